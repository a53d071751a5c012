-- The done query: one row per activity a learner of the audience's courses has completed,
-- as of $as_of, with its first completion. Read by measures.sql, and kept as the temp
-- table eval_done for campaigns with an `on_activity` message.
select p.learner_id, p.course_id, p.activity_id, min(p.occurred_at) as done_at
-- the completing events, a view (migration 0090) the shared warehouse answers from an index
from completion_events p
where p.occurred_at <= $as_of
  and /*@course_filter*/
  and p.activity_id is not null
  and is_completion(p.verb)
group by all
