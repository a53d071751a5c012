-- kpi_messages: one row per campaign, message, course and cohort: messages planned, sent,
-- failed and cancelled (the ledger), delivered, opened, clicked and bounced (provider
-- events; zero until a channel reports them), re-engagement (the share of sent messages
-- whose learner was active within 7 days, among those whose 7 days are over) and the
-- median hours to the first activity after the message. Definitions in kpi_message_outcomes.
create or replace view kpi_messages as
select
    campaign_id, message_key, course_id, cohort,
    count(*)                                        as in_ledger,
    count(*) filter (where status = 'planned')      as planned,
    count(*) filter (where sent)                    as sent,
    count(*) filter (where status = 'failed')       as failed,
    count(*) filter (where status = 'cancelled')    as cancelled,
    count(*) filter (where delivered)               as delivered,
    count(*) filter (where opened)                  as opened,
    count(*) filter (where clicked)                 as clicked,
    count(*) filter (where bounced)                 as bounced,
    count(reengaged_7d)                             as reengagement_observed,
    count(*) filter (where reengaged_7d)            as reengaged_7d,
    round(count(*) filter (where reengaged_7d) / nullif(count(reengaged_7d), 0), 4) as reengagement_rate,
    median(hours_to_activity)                       as median_hours_to_activity
from kpi_message_outcomes
group by all
