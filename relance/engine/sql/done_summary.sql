-- done.sql's answer from the loaders' summary of first completions (migration 0055),
-- read under the same condition as events_summary.sql.
select p.learner_id, p.course_id, p.activity_id, p.done_at
from activity_completions p
where /*@course_filter*/
