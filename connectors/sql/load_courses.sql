-- stg -> courses. Quarantined: no id, no title, unreadable dates, ends before it starts.
-- (As every loader: typed in one pass that keeps no copy of the staged row; a row set
-- aside is read again from the staging, by its key, for its raw JSON.)
create or replace temp table typed as
select
    s._file, s._row, s./*@key*/ as _key,
    relance_trim(s.course_id)               as course_id,
    relance_trim(s.title)                   as title,
    nullif(relance_trim(s.url), '')         as url,
    nullif(relance_trim(s.forum_url), '')   as forum_url,
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
    end as reason
from /*@staging*/ s;

-- an id twice with different values; rows alike are one course (a calendar's rows, each
-- with its course's title, mapped to courses too)
update typed set reason = 'course_id appears more than once in this load'
where reason is null
  and course_id in (select course_id from typed group by all
                    having count(distinct (title, url, forum_url, starts_on, ends_on)) > 1);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'courses', t._file, t._row, to_json(s), t.reason
from typed t
join /*@staging*/ s on s./*@key*/ = t._key
where t.reason is not null;

-- new or changed courses only (`loaded_at`: when a course last changed)
insert or replace into courses (course_id, title, url, forum_url, starts_on, ends_on, source, loaded_at)
select distinct course_id, title, url, forum_url, starts_on, ends_on, $source, $now
from typed t
where reason is null and not exists (
    select 1 from courses c
    where c.course_id = t.course_id and c.title is not distinct from t.title
      and c.url is not distinct from t.url and c.forum_url is not distinct from t.forum_url
      and c.starts_on is not distinct from t.starts_on and c.ends_on is not distinct from t.ends_on);

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from typed;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table typed
