-- stg -> study_history (previous attempts at the course, credits studied at once, as the
-- source says them). Quarantined: a count that is not a whole number >= 0, no enrolment
-- to attach it to.
create or replace temp table checked as
with typed as (
    select
        s._file, s._row, s./*@key*/ as _key,
        relance_trim(s.learner_id)                                as learner_id,
        relance_trim(s.course_id)                                 as course_id,
        try_cast(relance_trim(s.previous_attempts) as integer)    as previous_attempts,
        try_cast(relance_trim(s.credits) as integer)              as credits,
        s.previous_attempts                                       as previous_attempts_text,
        s.credits                                                 as credits_text
    from /*@staging*/ s
)
select t.* exclude (previous_attempts_text, credits_text),
    case
        when relance_blank(t.learner_id) then 'missing learner_id'
        when relance_blank(t.course_id) then 'missing course_id'
        when not relance_blank(t.previous_attempts_text)
             and coalesce(t.previous_attempts < 0, true)
            then 'previous_attempts is not a whole number >= 0: ' || t.previous_attempts_text
        when not relance_blank(t.credits_text) and coalesce(t.credits < 0, true)
            then 'credits is not a whole number >= 0: ' || t.credits_text
        when e.learner_id is null then 'unknown enrolment: learner ' || t.learner_id || ' on course ' || t.course_id
    end as reason
from typed t
left join enrolments e on e.learner_id = t.learner_id and e.course_id = t.course_id;

update checked set reason = 'learner and course appear more than once in this load'
where reason is null
  and (learner_id, course_id) in (select (learner_id, course_id) from checked
                                  group by all having count(*) > 1);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'study_history', c._file, c._row, to_json(s), c.reason
from checked c
join /*@staging*/ s on s./*@key*/ = c._key
where c.reason is not null;

insert or replace into study_history (learner_id, course_id, previous_attempts, credits, source, loaded_at)
select learner_id, course_id, previous_attempts, credits, $source, $now
from checked where reason is null;

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from checked;

drop table checked
