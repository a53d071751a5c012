-- collision_messages gets, from one campaign's evaluation (eval_candidates, eval_state),
-- one row per message it would send in its learner's local calendar week of $as_of:
-- what a run of this campaign would add to that week.
create temp table if not exists collision_messages (
    campaign_id varchar, learner_id varchar, tz varchar);

insert into collision_messages
select $campaign_id, c.learner_id, s.tz
from eval_candidates c
join (select learner_id, any_value(tz) as tz from eval_state group by all) s using (learner_id)
where c.outcome in ('planned', 'deferred')
  and date_trunc('week', timezone(s.tz, c.not_before)) = date_trunc('week', timezone(s.tz, $as_of));
