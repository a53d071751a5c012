-- stg -> enrolments. Quarantined: unknown learner or course, unreadable dates, an
-- unknown status. Statuses are mapped from the words LMS exports use.
-- Typed and checked in one pass that keeps no copy of the staged row (most rows are not
-- set aside): a row set aside is read again from the staging, by its number, for its raw
-- JSON.
create or replace temp table checked as
with typed as (
    select
        s._file, s._row, s./*@key*/ as _key,
        relance_trim(s.learner_id)                                 as learner_id,
        relance_trim(s.course_id)                                  as course_id,
        nullif(relance_trim(s.cohort), '')                         as cohort,
        relance_ts(relance_trim(s.enrolled_at), $timezone, $datetime_formats)  as enrolled_at,
        case
            when relance_blank(s.status) then 'enrolled'
            when lower(trim(s.status)) in ('enrolled', 'active', 'in_progress', 'in progress', 'inscrit', 'en cours', 'registered') then 'enrolled'
            when lower(trim(s.status)) in ('completed', 'complete', 'passed', 'done', 'terminé', 'termine', 'réussi', 'distinction', 'pass') then 'completed'
            when lower(trim(s.status)) in ('withdrawn', 'unenrolled', 'dropped', 'cancelled', 'abandon', 'désinscrit', 'desinscrit') then 'withdrawn'
        end                                                        as status,
        relance_ts(relance_trim(s.completed_at), $timezone, $datetime_formats) as completed_at,
        relance_ts(relance_trim(s.withdrawn_at), $timezone, $datetime_formats) as withdrawn_at,
        s.enrolled_at as enrolled_at_text, s.completed_at as completed_at_text,
        s.withdrawn_at as withdrawn_at_text, s.status as status_text
    from /*@staging*/ s
)
select t.* exclude (enrolled_at_text, completed_at_text, withdrawn_at_text, status_text),
    case
        when relance_blank(t.learner_id) then 'missing learner_id'
        when relance_blank(t.course_id) then 'missing course_id'
        when t.enrolled_at is null then 'unreadable or missing enrolled_at: ' || coalesce(t.enrolled_at_text, '')
        when t.status is null then 'unknown status: ' || t.status_text
        when not relance_blank(t.completed_at_text) and t.completed_at is null then 'unreadable completed_at: ' || t.completed_at_text
        when not relance_blank(t.withdrawn_at_text) and t.withdrawn_at is null then 'unreadable withdrawn_at: ' || t.withdrawn_at_text
        when l.learner_id is null then 'unknown learner: ' || t.learner_id
        when c.course_id is null then 'unknown course: ' || t.course_id
    end as reason
from typed t
left join learners l on l.learner_id = t.learner_id
left join courses c on c.course_id = t.course_id;

-- a learner and course twice: every row of them is set aside (a group by, not a window
-- over every row)
update checked set reason = 'learner and course appear more than once in this load'
where reason is null
  and (learner_id, course_id) in (select (learner_id, course_id) from checked
                                  group by all having count(*) > 1);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'enrolments', c._file, c._row, to_json(s), c.reason
from checked c
join /*@staging*/ s on s./*@key*/ = c._key
where c.reason is not null;

-- An upsert by learner and course, as an update of the enrolments already known and an
-- insert of the new ones (`insert or replace` does both as a merge, slower on a first
-- load of many).
-- Only an enrolment that changed is updated (`loaded_at`: when it last changed).
update enrolments e
set cohort = c.cohort, enrolled_at = c.enrolled_at, status = c.status,
    completed_at = c.completed_at, withdrawn_at = c.withdrawn_at, source = $source, loaded_at = $now
from checked c
where c.reason is null and e.learner_id = c.learner_id and e.course_id = c.course_id
  and (e.cohort is distinct from c.cohort or e.enrolled_at is distinct from c.enrolled_at
       or e.status is distinct from c.status or e.completed_at is distinct from c.completed_at
       or e.withdrawn_at is distinct from c.withdrawn_at);

insert into enrolments
    (learner_id, course_id, cohort, enrolled_at, status, completed_at, withdrawn_at, source, loaded_at)
select learner_id, course_id, cohort, enrolled_at, status, completed_at, withdrawn_at, $source, $now
from checked c
where reason is null
  and not exists (select 1 from enrolments e where e.learner_id = c.learner_id and e.course_id = c.course_id);

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from checked;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked
