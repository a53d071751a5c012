-- stg -> activities (the course calendar). Quarantined: no ids, unknown course,
-- unreadable dates or numbers.
create or replace temp table checked as
select
    s._file, s._row, to_json(s) as raw,
    trim(s.course_id)                                      as course_id,
    trim(s.activity_id)                                    as activity_id,
    coalesce(nullif(trim(s.title), ''), trim(s.activity_id)) as title,
    nullif(trim(s.kind), '')                               as kind,
    relance_num(s.week)::integer                           as week,
    relance_ts(trim(s.opens_at), $timezone, $datetime_formats)   as opens_at,
    relance_ts(trim(s.due_at), $timezone, $datetime_formats)     as due_at,
    coalesce(relance_num(s.weight), 1)                     as weight,
    coalesce(relance_bool(s.is_required), true)            as is_required,
    nullif(trim(s.url), '')                                as url,
    case
        when relance_blank(s.course_id) then 'missing course_id'
        when relance_blank(s.activity_id) then 'missing activity_id'
        when c.course_id is null then 'unknown course: ' || trim(s.course_id)
        when not relance_blank(s.week) and relance_num(s.week) is null then 'unreadable week: ' || s.week
        when not relance_blank(s.opens_at) and relance_ts(trim(s.opens_at), $timezone, $datetime_formats) is null
            then 'unreadable opens_at: ' || s.opens_at
        when not relance_blank(s.due_at) and relance_ts(trim(s.due_at), $timezone, $datetime_formats) is null
            then 'unreadable due_at: ' || s.due_at
        when not relance_blank(s.weight) and (relance_num(s.weight) is null or relance_num(s.weight) < 0)
            then 'weight must be a number >= 0: ' || s.weight
        when not relance_blank(s.is_required) and relance_bool(s.is_required) is null
            then 'is_required must be yes/no: ' || s.is_required
        when count(*) over (partition by trim(s.course_id), trim(s.activity_id)) > 1
            then 'course and activity appear more than once in this load'
    end as reason
from /*@staging*/ s
left join courses c on c.course_id = trim(s.course_id);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'activities', _file, _row, raw, reason from checked where reason is not null;

insert or replace into activities
    (course_id, activity_id, title, kind, week, opens_at, due_at, weight, is_required, url, source, loaded_at)
select course_id, activity_id, title, kind, week, opens_at, due_at, weight, is_required, url, $source, $now
from checked where reason is null;

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from checked;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked
