-- stg -> outcomes (how an enrolment ended, as the source says it). Quarantined: no
-- result, an unreadable date, and what enrolment_rows.sql sets aside (no learner or
-- course, no enrolment to attach it to, the same enrolment twice).
create or replace temp table checked as
with typed as (
    select t.* exclude (decided_at_text),
        case
            when relance_blank(t.final_result) then 'missing final_result'
            when not relance_blank(t.decided_at_text) and t.decided_at is null
                then 'unreadable decided_at: ' || t.decided_at_text
        end as problem
    from (
        select
            s._file, s._row, s./*@key*/ as _key,
            relance_trim(s.learner_id)                                as learner_id,
            relance_trim(s.course_id)                                 as course_id,
            relance_trim(s.final_result)                              as final_result,
            relance_ts(relance_trim(s.decided_at), $timezone, $datetime_formats) as decided_at,
            s.decided_at                                              as decided_at_text
        from /*@staging*/ s
    ) t
)
/*@include enrolment_rows*/

insert or replace into outcomes (learner_id, course_id, final_result, decided_at, source, loaded_at)
select learner_id, course_id, final_result, decided_at, $source, $now
from checked where reason is null;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked
