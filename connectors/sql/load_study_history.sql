-- stg -> study_history (previous attempts at the course, credits studied at once, as the
-- source says them). Quarantined: a count that is not a whole number >= 0, and what
-- enrolment_rows.sql sets aside (no learner or course, no enrolment to attach it to, the
-- same enrolment twice).
create or replace temp table checked as
with typed as (
    select t.* exclude (previous_attempts_text, credits_text),
        case
            when not relance_blank(t.previous_attempts_text)
                 and coalesce(t.previous_attempts < 0, true)
                then 'previous_attempts is not a whole number >= 0: ' || t.previous_attempts_text
            when not relance_blank(t.credits_text) and coalesce(t.credits < 0, true)
                then 'credits is not a whole number >= 0: ' || t.credits_text
        end as problem
    from (
        select
            s._file, s._row, s./*@key*/ as _key,
            relance_trim(s.learner_id)                                as learner_id,
            relance_trim(s.course_id)                                 as course_id,
            try_cast(relance_trim(s.previous_attempts) as integer)    as previous_attempts,
            try_cast(relance_trim(s.credits) as integer)              as credits,
            s.previous_attempts                                       as previous_attempts_text,
            s.credits                                                 as credits_text
        from /*@staging*/ s
    ) t
)
/*@include enrolment_rows*/

insert or replace into study_history (learner_id, course_id, previous_attempts, credits, source, loaded_at)
select learner_id, course_id, previous_attempts, credits, $source, $now
from checked where reason is null;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked
