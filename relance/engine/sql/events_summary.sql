-- events_scan.sql's answer from the summaries the loaders keep (migration 0055), a row per
-- learner and course: read only when they cover every event and none is later than
-- $as_of (engine/evaluation.py), so the answer is the scan's.
select p.learner_id, p.course_id, p.last_activity_at, p.reported_progress, p.best_progress_at
from progress_summaries p
where /*@course_filter*/
