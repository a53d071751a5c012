-- stg -> outcomes (how an enrolment ended, as the source says it). Quarantined: no
-- result, an unreadable date, no enrolment to attach it to.
create or replace temp table checked as
with typed as (
    select
        s._file, s._row, s./*@key*/ as _key,
        relance_trim(s.learner_id)                                as learner_id,
        relance_trim(s.course_id)                                 as course_id,
        relance_trim(s.final_result)                              as final_result,
        relance_ts(relance_trim(s.decided_at), $timezone, $datetime_formats) as decided_at,
        s.decided_at                                              as decided_at_text
    from /*@staging*/ s
)
select t.* exclude (decided_at_text),
    case
        when relance_blank(t.learner_id) then 'missing learner_id'
        when relance_blank(t.course_id) then 'missing course_id'
        when relance_blank(t.final_result) then 'missing final_result'
        when not relance_blank(t.decided_at_text) and t.decided_at is null
            then 'unreadable decided_at: ' || t.decided_at_text
        when e.learner_id is null then 'unknown enrolment: learner ' || t.learner_id || ' on course ' || t.course_id
    end as reason
from typed t
left join enrolments e on e.learner_id = t.learner_id and e.course_id = t.course_id;

update checked set reason = 'learner and course appear more than once in this load'
where reason is null
  and (learner_id, course_id) in (select (learner_id, course_id) from checked
                                  group by all having count(*) > 1);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'outcomes', c._file, c._row, to_json(s), c.reason
from checked c
join /*@staging*/ s on s./*@key*/ = c._key
where c.reason is not null;

insert or replace into outcomes (learner_id, course_id, final_result, decided_at, source, loaded_at)
select learner_id, course_id, final_result, decided_at, $source, $now
from checked where reason is null;

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from checked;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked
