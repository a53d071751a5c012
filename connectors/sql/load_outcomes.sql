-- stg -> outcomes (how an enrolment ended, as the source says it). Quarantined: no
-- result, an unreadable date, no enrolment to attach it to.
create or replace temp table checked as
select
    s._file, s._row, to_json(s) as raw,
    trim(s.learner_id)                                        as learner_id,
    trim(s.course_id)                                         as course_id,
    trim(s.final_result)                                      as final_result,
    relance_ts(trim(s.decided_at), $timezone, $datetime_formats)    as decided_at,
    case
        when relance_blank(s.learner_id) then 'missing learner_id'
        when relance_blank(s.course_id) then 'missing course_id'
        when relance_blank(s.final_result) then 'missing final_result'
        when not relance_blank(s.decided_at) and relance_ts(trim(s.decided_at), $timezone, $datetime_formats) is null
            then 'unreadable decided_at: ' || s.decided_at
        when e.learner_id is null then 'unknown enrolment: learner ' || trim(s.learner_id) || ' on course ' || trim(s.course_id)
        when count(*) over (partition by trim(s.learner_id), trim(s.course_id)) > 1
            then 'learner and course appear more than once in this load'
    end as reason
from /*@staging*/ s
left join enrolments e on e.learner_id = trim(s.learner_id) and e.course_id = trim(s.course_id);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'outcomes', _file, _row, raw, reason from checked where reason is not null;

insert or replace into outcomes (learner_id, course_id, final_result, decided_at, source, loaded_at)
select learner_id, course_id, final_result, decided_at, $source, $now
from checked where reason is null;

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from checked;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked
