-- eval_done: one row per activity a learner of the audience has completed, as of $as_of
-- (first completion). Only built for campaigns with an `on_activity` message.
create or replace temp table eval_done as
select p.learner_id, p.course_id, p.activity_id, min(p.occurred_at) as done_at
from progress_events p
semi join eval_audience a on a.learner_id = p.learner_id and a.course_id = p.course_id
where p.occurred_at <= $as_of
  and p.activity_id is not null
  and p.verb in ('completed', 'passed', 'submitted')
group by all
