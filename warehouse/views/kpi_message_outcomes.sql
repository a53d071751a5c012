-- kpi_message_outcomes: one row per message of the ledger to a learner: its status, what the provider
-- reported of it (message_events: delivered, opened, clicked, bounced), and whether the
-- learner came back after it. The relance moment is `not_before`, when the message was
-- due to go (a sent message went then, give or take the delivery hour; in replays and the
-- demo `sent_at` is the wall clock of the run, not the replayed moment).
--   reengaged_7d      any activity on the course within 7 days after the relance; null
--                     while those 7 days are not over at the KPI clock (or not sent).
--   hours_to_activity hours from the relance to the first activity after it (null if none).
create or replace view kpi_message_outcomes as
with clock as (select any_value(as_of) as as_of from kpi_base),
events as (
    select message_id,
           bool_or(event = 'delivered')                 as delivered,
           bool_or(event = 'open')                      as opened,
           bool_or(event = 'click')                     as clicked,
           bool_or(event in ('bounce', 'dropped'))      as bounced
    from message_events
    where message_id is not null
    group by all
),
next_activity as (
    select m.message_id, min(p.occurred_at) as first_activity_after
    from messages m
    join progress_events p
      on p.learner_id = m.learner_id and p.course_id = m.course_id
     and p.occurred_at > m.not_before, clock
    where m.status = 'sent' and p.occurred_at <= clock.as_of
    group by all
)
select
    m.message_id, m.campaign_id, m.message_key, m.variant, m.trigger, m.learner_id, m.course_id,
    e.cohort, m.status, m.not_before as relanced_at,
    m.status = 'sent' as sent,
    coalesce(ev.delivered, false) as delivered,
    coalesce(ev.opened, false) as opened,
    coalesce(ev.clicked, false) as clicked,
    coalesce(ev.bounced, false) as bounced,
    n.first_activity_after,
    case when m.status = 'sent' and m.not_before + interval 7 day <= clock.as_of
         then coalesce(n.first_activity_after <= m.not_before + interval 7 day, false)
    end as reengaged_7d,
    round(epoch(n.first_activity_after - m.not_before) / 3600, 1) as hours_to_activity
from messages m
cross join clock
left join enrolments e using (learner_id, course_id)
left join events ev using (message_id)
left join next_activity n using (message_id)
-- managers' digests are not relances of a learner (no learner to come back): they are in
-- the ledger and campaign_funnel, not in the message KPIs
where m.trigger <> 'digest'
