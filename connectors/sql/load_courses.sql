-- stg -> courses. Quarantined: no id, no title, unreadable dates, ends before it starts.
create or replace temp table typed as
select
    s._file, s._row, to_json(s) as raw,
    trim(s.course_id)                       as course_id,
    trim(s.title)                           as title,
    nullif(trim(s.url), '')                 as url,
    nullif(trim(s.forum_url), '')           as forum_url,
    relance_date(s.starts_on, $date_formats) as starts_on,
    relance_date(s.ends_on, $date_formats)   as ends_on,
    case
        when relance_blank(s.course_id) then 'missing course_id'
        when relance_blank(s.title) then 'missing title'
        when not relance_blank(s.starts_on) and relance_date(s.starts_on, $date_formats) is null
            then 'unreadable starts_on: ' || s.starts_on
        when not relance_blank(s.ends_on) and relance_date(s.ends_on, $date_formats) is null
            then 'unreadable ends_on: ' || s.ends_on
        when relance_date(s.ends_on, $date_formats) < relance_date(s.starts_on, $date_formats)
            then 'ends_on is before starts_on'
        when count(*) over (partition by trim(s.course_id)) > 1
            then 'course_id appears more than once in this load'
    end as reason
from /*@staging*/ s;

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'courses', _file, _row, raw, reason from typed where reason is not null;

insert or replace into courses (course_id, title, url, forum_url, starts_on, ends_on, source, loaded_at)
select course_id, title, url, forum_url, starts_on, ends_on, $source, $now
from typed where reason is null;

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from typed;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table typed
