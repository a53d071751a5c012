-- stg -> enrolments. Quarantined: unknown learner or course, unreadable dates, an
-- unknown status. Statuses are mapped from the words LMS exports use.
create or replace temp table typed as
select
    s, s._file, s._row,
    trim(s.learner_id)                                         as learner_id,
    trim(s.course_id)                                          as course_id,
    nullif(trim(s.cohort), '')                                 as cohort,
    relance_ts(trim(s.enrolled_at), $timezone, $datetime_formats)    as enrolled_at,
    case
        when relance_blank(s.status) then 'enrolled'
        when lower(trim(s.status)) in ('enrolled', 'active', 'in_progress', 'in progress', 'inscrit', 'en cours', 'registered') then 'enrolled'
        when lower(trim(s.status)) in ('completed', 'complete', 'passed', 'done', 'terminé', 'termine', 'réussi', 'distinction', 'pass') then 'completed'
        when lower(trim(s.status)) in ('withdrawn', 'unenrolled', 'dropped', 'cancelled', 'abandon', 'désinscrit', 'desinscrit') then 'withdrawn'
    end                                                        as status,
    relance_ts(trim(s.completed_at), $timezone, $datetime_formats)   as completed_at,
    relance_ts(trim(s.withdrawn_at), $timezone, $datetime_formats)   as withdrawn_at,
    s.enrolled_at as enrolled_at_text, s.completed_at as completed_at_text,
    s.withdrawn_at as withdrawn_at_text, s.status as status_text
from /*@staging*/ s;

create or replace temp table checked as
select t.* exclude (s),
    case
        when relance_blank(t.learner_id) then 'missing learner_id'
        when relance_blank(t.course_id) then 'missing course_id'
        when t.enrolled_at is null then 'unreadable or missing enrolled_at: ' || coalesce(t.enrolled_at_text, '')
        when t.status is null then 'unknown status: ' || t.status_text
        when not relance_blank(t.completed_at_text) and t.completed_at is null then 'unreadable completed_at: ' || t.completed_at_text
        when not relance_blank(t.withdrawn_at_text) and t.withdrawn_at is null then 'unreadable withdrawn_at: ' || t.withdrawn_at_text
        when l.learner_id is null then 'unknown learner: ' || t.learner_id
        when c.course_id is null then 'unknown course: ' || t.course_id
        when count(*) over (partition by t.learner_id, t.course_id) > 1
            then 'learner and course appear more than once in this load'
    end as reason,
    -- the staged row as JSON for the rows set aside only
    case when reason is not null then to_json(t.s) end as raw
from typed t
left join learners l on l.learner_id = t.learner_id
left join courses c on c.course_id = t.course_id;

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'enrolments', _file, _row, raw, reason from checked where reason is not null;

-- An upsert by learner and course, as an update of the enrolments already known and an
-- insert of the new ones (`insert or replace` does both as a merge, slower on a first
-- load of many).
update enrolments e
set cohort = c.cohort, enrolled_at = c.enrolled_at, status = c.status,
    completed_at = c.completed_at, withdrawn_at = c.withdrawn_at, source = $source, loaded_at = $now
from checked c
where c.reason is null and e.learner_id = c.learner_id and e.course_id = c.course_id;

insert into enrolments
    (learner_id, course_id, cohort, enrolled_at, status, completed_at, withdrawn_at, source, loaded_at)
select learner_id, course_id, cohort, enrolled_at, status, completed_at, withdrawn_at, $source, $now
from checked c
where reason is null
  and not exists (select 1 from enrolments e where e.learner_id = c.learner_id and e.course_id = c.course_id);

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from typed;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked;
drop table typed
