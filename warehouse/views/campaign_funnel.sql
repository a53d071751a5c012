-- campaign_funnel: one row per campaign run: learners evaluated, in the control group,
-- given a message (now or deferred), refused one, with nothing due; and what became of the
-- messages the run planned (sent, failed, cancelled, still waiting).
create or replace view campaign_funnel as
with decided as (
    select run_id,
           count(*) filter (where outcome = 'planned')    as planned_now,
           count(*) filter (where outcome = 'deferred')   as deferred,
           count(*) filter (where outcome = 'suppressed') as suppressed,
           count(*) filter (where outcome = 'no_message') as no_message
    from decisions
    group by all
),
delivered as (
    select run_id,
           count(*) filter (where status = 'sent')        as sent,
           count(*) filter (where status = 'failed')      as failed,
           count(*) filter (where status = 'cancelled')   as cancelled,
           count(*) filter (where status = 'planned')     as waiting,
           count(*) filter (where status = 'uncertain')   as uncertain
    from messages
    group by all
)
select
    r.run_id, r.campaign_id, r.as_of, r.status,
    r.n_evaluated                    as evaluated,
    r.n_holdout                      as control_group,
    coalesce(d.planned_now, 0)       as planned_now,
    coalesce(d.deferred, 0)          as deferred,
    coalesce(d.suppressed, 0)        as suppressed,
    coalesce(d.no_message, 0)        as no_message,
    coalesce(m.sent, 0)              as sent,
    coalesce(m.failed, 0)            as failed,
    coalesce(m.cancelled, 0)         as cancelled,
    coalesce(m.waiting, 0)           as waiting,
    coalesce(m.uncertain, 0)         as uncertain,
    r.n_follow_ups                   as follow_ups,
    r.started_at, r.finished_at, r.evaluate_ms, r.deliver_ms, r.flow_run_id, r.error
from campaign_runs r
left join decided d using (run_id)
left join delivered m using (run_id)
