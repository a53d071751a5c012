-- kpi_campaign_learners: one row per campaign, learner and course the campaign ever
-- evaluated (any run), with the learner's kpi_base outcomes, whether they are in the
-- campaign's control group (a stable draw: the same in every run), how many messages
-- the campaign sent them, and when it first saw them.
create or replace view kpi_campaign_learners as
with evaluated as (
    select campaign_id, learner_id, course_id, bool_or(is_holdout) as is_holdout,
           min(as_of) as first_evaluated_at
    from decisions
    group by all
),
sent as (
    select campaign_id, learner_id, course_id, count(*) as messages_sent
    from messages
    where status = 'sent'
    group by all
)
select
    v.campaign_id,
    case when v.is_holdout then 'control' else 'treated' end as "group",
    v.first_evaluated_at,
    coalesce(s.messages_sent, 0) as messages_sent,
    b.*
from evaluated v
join kpi_base b using (learner_id, course_id)
left join sent s using (campaign_id, learner_id, course_id)
