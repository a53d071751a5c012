-- stg -> activities (the course calendar). Quarantined: no ids, unknown course,
-- unreadable dates or numbers.
create or replace temp table checked as
with typed as (
    select
        s._file, s._row, s./*@key*/ as _key,
        relance_trim(s.course_id)                              as course_id,
        relance_trim(s.activity_id)                            as activity_id,
        coalesce(nullif(relance_trim(s.title), ''), relance_trim(s.activity_id)) as title,
        nullif(relance_trim(s.kind), '')                       as kind,
        relance_num(s.week)                                    as week_number,
        relance_ts(relance_trim(s.opens_at), $timezone, $datetime_formats) as opens_at,
        relance_ts(relance_trim(s.due_at), $timezone, $datetime_formats)   as due_at,
        relance_num(s.weight)                                  as weight_number,
        relance_bool(s.is_required)                            as required,
        nullif(relance_trim(s.url), '')                        as url,
        s.week as week_text, s.opens_at as opens_at_text, s.due_at as due_at_text,
        s.weight as weight_text, s.is_required as is_required_text
    from /*@staging*/ s
)
select
    t._file, t._row, t._key, t.course_id, t.activity_id, t.title, t.kind,
    t.week_number::integer                                 as week,
    t.opens_at, t.due_at,
    coalesce(t.weight_number, 1)                           as weight,
    coalesce(t.required, true)                             as is_required,
    t.url,
    case
        when relance_blank(t.course_id) then 'missing course_id'
        when relance_blank(t.activity_id) then 'missing activity_id'
        when c.course_id is null then 'unknown course: ' || t.course_id
        when not relance_blank(t.week_text) and t.week_number is null then 'unreadable week: ' || t.week_text
        when not relance_blank(t.opens_at_text) and t.opens_at is null
            then 'unreadable opens_at: ' || t.opens_at_text
        when not relance_blank(t.due_at_text) and t.due_at is null
            then 'unreadable due_at: ' || t.due_at_text
        when not relance_blank(t.weight_text) and (t.weight_number is null or t.weight_number < 0)
            then 'weight must be a number >= 0: ' || t.weight_text
        when not relance_blank(t.is_required_text) and t.required is null
            then 'is_required must be yes/no: ' || t.is_required_text
    end as reason
from typed t
left join courses c on c.course_id = t.course_id;

update checked set reason = 'course and activity appear more than once in this load'
where reason is null
  and (course_id, activity_id) in (select (course_id, activity_id) from checked
                                   group by all having count(*) > 1);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'activities', c._file, c._row, to_json(s), c.reason
from checked c
join /*@staging*/ s on s./*@key*/ = c._key
where c.reason is not null;

insert or replace into activities
    (course_id, activity_id, title, kind, week, opens_at, due_at, weight, is_required, url, source, loaded_at)
select course_id, activity_id, title, kind, week, opens_at, due_at, weight, is_required, url, $source, $now
from checked where reason is null;

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from checked;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked
