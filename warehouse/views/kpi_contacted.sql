-- kpi_contacted: one row per campaign and group ('contacted' / 'not contacted'): the
-- learners its follow-up rules listed, split by whether a person of the team reached them
-- (the desk's follow_up_actions: a contact whose outcome is not no_answer) after they were
-- first listed, and what became of them by the KPI clock (kpi_base): completed, withdrew,
-- silent, and active again within 14 days of the contact (for the others: of the listing).
-- OBSERVATIONAL, NOT RANDOMISED: people choose whom they call (who answers, who seems worth
-- it), so the two groups differ before any call, and the gap between them is no measure
-- of what calling does. The control group (kpi_control) is the randomised comparison.
create or replace view kpi_contacted as
with listed as (
    select campaign_id, learner_id, course_id, min(created_at) as listed_at
    from follow_ups
    group by all
),
reached as (
    select l.campaign_id, l.learner_id, l.course_id, min(a.occurred_at) as contacted_at
    from listed l
    join follow_up_actions a using (learner_id, course_id)
    where a.kind = 'contact' and a.outcome <> 'no_answer' and a.occurred_at >= l.listed_at
    group by all
),
learners as (
    select l.campaign_id, r.contacted_at is not null as contacted, b.completed, b.withdrawn,
           b.silent, coalesce(r.contacted_at, l.listed_at) as since, b.as_of,
           l.learner_id, l.course_id
    from listed l
    left join reached r using (campaign_id, learner_id, course_id)
    join kpi_base b using (learner_id, course_id)
),
active_again as (
    select distinct x.campaign_id, x.learner_id, x.course_id
    from learners x
    join progress_events p
        on p.learner_id = x.learner_id and p.course_id = x.course_id
       and p.occurred_at > x.since and p.occurred_at <= x.since + interval 14 day
       and p.occurred_at <= x.as_of
)
select
    x.campaign_id,
    case when x.contacted then 'contacted' else 'not contacted' end as grp,
    count(*) as learners,
    count(*) filter (where x.completed) as completed,
    count(*) filter (where x.withdrawn) as withdrawn,
    count(*) filter (where x.silent) as silent,
    count(a.learner_id) as active_within_14d,
    'observational, not randomised' as design
from learners x
left join active_again a using (campaign_id, learner_id, course_id)
group by all
