-- For two campaigns, $first and $second, both evaluated into collision_messages: the
-- learners who would get messages from both in their local week of $as_of, and of those,
-- how many would get more than $cap that week, counting what the ledger already holds
-- for the week from every campaign (the way the weekly cap counts it).
with learners as (
    select learner_id, any_value(tz) as tz from collision_messages group by all
),
ledger as (
    select m.campaign_id, m.learner_id
    from messages m
    join learners l using (learner_id)
    where (m.status in ('planned', 'sent', 'uncertain')
           or (m.status = 'failed' and m.attempts < $max_attempts))   -- still to be retried
      and date_trunc('week', timezone(l.tz, m.not_before))
          = date_trunc('week', timezone(l.tz, $as_of))
),
week as (
    select campaign_id, learner_id from collision_messages
    union all
    select campaign_id, learner_id from ledger
),
per_learner as (
    select learner_id,
           count(*) as messages,
           bool_or(campaign_id = $first) as from_first,
           bool_or(campaign_id = $second) as from_second
    from week
    group by all
)
select count(*) filter (where from_first and from_second) as both,
       count(*) filter (where from_first and from_second and messages > $cap) as over_cap
from per_learner
