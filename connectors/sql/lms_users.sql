-- What the reading of an LMS's users shares (Moodle, Canvas): run before <kind>_users.sql.
-- Written once here so that both LMSs tell an enrolment new to the warehouse, and word
-- what the warehouse already knows of one, the same way.

-- An enrolment the warehouse does not hold yet: its learner is asked for their progress
-- and staged whatever the course's cursor says (<kind>_users.sql).
create or replace temp macro lms_new_enrolment(learner, course) as
    not exists (select 1 from enrolments e where e.learner_id = learner and e.course_id = course);

-- The warehouse's enrolments with their times as staged text (ISO 8601 UTC): what it
-- already knows of an enrolment is kept (<kind>_stage.sql), and one no longer listed is
-- staged as withdrawn (lms_stage.sql, which drops this view).
create or replace temp view lms_enrolments_known as
select learner_id, course_id, source, cohort, status,
       strftime(enrolled_at at time zone 'UTC', '%Y-%m-%dT%H:%M:%S') || 'Z'  as enrolled_at,
       strftime(completed_at at time zone 'UTC', '%Y-%m-%dT%H:%M:%S') || 'Z' as completed_at,
       strftime(withdrawn_at at time zone 'UTC', '%Y-%m-%dT%H:%M:%S') || 'Z' as withdrawn_at
from enrolments
