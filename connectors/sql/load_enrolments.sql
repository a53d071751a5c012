-- stg -> enrolments. Quarantined: unknown learner or course, unreadable dates, an
-- unknown status. Statuses are mapped from the words LMS exports use.
create or replace temp table typed as
select
    s._file, s._row, to_json(s) as raw,
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
select t.*,
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
    end as reason
from typed t
left join learners l on l.learner_id = t.learner_id
left join courses c on c.course_id = t.course_id;

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'enrolments', _file, _row, raw, reason from checked where reason is not null;

insert or replace into enrolments
    (learner_id, course_id, cohort, enrolled_at, status, completed_at, withdrawn_at, source, loaded_at)
select learner_id, course_id, cohort, enrolled_at, status, completed_at, withdrawn_at, $source, $now
from checked where reason is null;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked;
drop table typed
