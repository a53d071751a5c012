-- kpi_weekly_stages: one row per campaign, calendar week (Monday, UTC, of the run's as_of)
-- and stage: learners in the stage at the week's last successful run, and of those, how
-- many were active in the 7 days before it (inactive_days < 7), treated and control.
create or replace view kpi_weekly_stages as
with last_runs as (
    select campaign_id, date_trunc('week', as_of)::date as week_start,
           arg_max(run_id, as_of) as run_id
    from campaign_runs
    where status = 'succeeded'
    group by all
)
select r.campaign_id, r.week_start, d.stage,
       count(*)                                              as learners,
       count(*) filter (where d.inactive_days < 7)           as active,
       count(*) filter (where d.is_holdout)                  as control,
       count(*) filter (where d.is_holdout and d.inactive_days < 7) as control_active
from last_runs r
join decisions d using (run_id)
group by all
