-- What the staging of an LMS read through its API (Moodle, Canvas) shares; run after
-- <kind>_stage.sql (/*@kind*/: moodle, canvas), which leaves, as that LMS words them:
--   lms_courses     the courses read, as stg_<kind>__courses rows
--   lms_activities  their calendars, as stg_<kind>__activities rows
--   lms_read        the courses whose learners were read in full this sync (course_id)
--   lms_listed      the learners each lists (course_id, learner_id)
-- and uses lms_users.sql's lms_enrolments_known.

-- Courses and activities: staged when new or changed.
create or replace table stg_/*@kind*/__courses as
select * from lms_courses n
where not exists (
    select 1 from courses w
    where w.course_id = n.course_id and w.title is not distinct from n.title
      and w.url is not distinct from n.url
      and w.starts_on is not distinct from try_cast(n.starts_on as date)
      and w.ends_on is not distinct from try_cast(n.ends_on as date));

create or replace table stg_/*@kind*/__activities as
select * from lms_activities n
where not exists (
    select 1 from activities w
    where w.course_id = n.course_id and w.activity_id = n.activity_id
      and w.title is not distinct from n.title and w.kind is not distinct from n.kind
      and w.week is not distinct from try_cast(n.week as integer)
      and w.opens_at is not distinct from try_cast(n.opens_at as timestamptz)
      and w.due_at is not distinct from try_cast(n.due_at as timestamptz)
      and w.is_required = (n.is_required = 'true') and w.url is not distinct from n.url);

-- Enrolled here before, and no longer among the course's learners (read in full this
-- sync): withdrawn now. $listing names the list that no longer holds them.
insert into stg_/*@kind*/__enrolments
    (learner_id, course_id, cohort, enrolled_at, status, completed_at, withdrawn_at, _file, _row)
select e.learner_id, e.course_id, e.cohort, e.enrolled_at, 'withdrawn', e.completed_at,
       $now, $listing, 0
from lms_enrolments_known e
where e.source = $source and e.status <> 'withdrawn'
  and e.course_id in (select course_id from lms_read)
  and not exists (select 1 from lms_listed u
                  where u.course_id = e.course_id and u.learner_id = e.learner_id);

drop table lms_courses;
drop table lms_activities;
drop table lms_read;
drop table lms_listed;
drop view lms_enrolments_known
