-- decision_reasons: one row per campaign run, outcome, message and reason, with the number
-- of learners: "why did (or didn't) they get a message" at a glance.
create or replace view decision_reasons as
select run_id, campaign_id, outcome, message_key, split_part(reason, ':', 1) as reason,
       count(*) as learners
from decisions
group by all
