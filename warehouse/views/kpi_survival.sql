-- kpi_survival: one row per campaign ('(all)': every enrolment, group 'all'), cohort ('(all)':
-- the campaign's cohorts together), group and course week: the Kaplan–Meier estimate of the
-- share still not dropped out by the end of that week, and its risk set.
--
-- "Dropped out" is kpi_base's, the stages' rule: withdrawn, or silent 21 days or more
-- (inactive_days >= 21, `dormant` in the demo campaigns; a learner who never started counts
-- from enrolment). A dropout is dated when the learner was last seen, but it is only known
-- 21 days later: a learner seen in the last 21 days may be gone or may come back. So the
-- curve stops at the last course week whose every day is at least 21 days before the KPI
-- clock (`last_known_week`), and every learner not known to have dropped out by then is
-- censored there (right-censoring): the recent weeks are not drawn flat, they are not drawn.
-- Learners who enrolled after a course started enter its risk set in their enrolment week
-- (delayed entry). Weeks count from each course's start, as in kpi_dropout_curve.
--   at_risk     learners followed in the week: entered by then, not dropped out before.
--   dropped_out of those, dropped out in the week (last seen in it, silent 21+ days since).
--   censored    of those, followed no further (not dropped out by the last known week).
--   survival    product over the weeks so far of (1 - dropped_out / at_risk); dropout = 1 - it.
--   se          Greenwood's standard error of survival; low/high: survival ± 1.96 se in [0, 1].
create or replace view kpi_survival as
with rows as (
    select campaign_id, "group", course_id, cohort, course_start, enrolled_at, as_of, dropout_at
    from kpi_campaign_learners
    union all
    select '(all)', 'all', course_id, cohort, course_start, enrolled_at, as_of, dropout_at
    from kpi_base
),
learners as (
    select *,
           greatest(1, floor(date_diff('day', course_start, enrolled_at::date) / 7)::integer + 1)
               as entry_week,
           -- the last course week that ended before the day 21 days before the clock
           floor(date_diff('day', course_start, (as_of - interval 21 day)::date) / 7)::integer
               as last_known_week,
           case when dropout_at is not null
                then greatest(1, floor(date_diff('day', course_start, dropout_at::date) / 7)::integer + 1)
           end as dropout_week
    from rows
),
spans as (
    select *,
           coalesce(dropout_week <= last_known_week, false) as dropped,
           case when dropout_week <= last_known_week then dropout_week else last_known_week end
               as exit_week
    from learners
    where entry_week <= last_known_week
),
weeks as (
    select distinct campaign_id, "group", course_id, cohort, last_known_week,
           unnest(generate_series(1, last_known_week)) as course_week
    from spans
),
risk_sets as (
    select w.campaign_id, w."group", w.cohort, w.course_week,
           count(s.campaign_id)                                             as at_risk,
           count(s.campaign_id) filter (where s.dropped and s.exit_week = w.course_week)
                                                                            as dropped_out,
           count(s.campaign_id) filter (where not s.dropped and s.exit_week = w.course_week)
                                                                            as censored
    from weeks w
    left join spans s
      on s.campaign_id = w.campaign_id and s."group" = w."group" and s.course_id = w.course_id
     and s.cohort is not distinct from w.cohort
     and s.entry_week <= w.course_week and s.exit_week >= w.course_week
    group by all
),
pooled as (
    select campaign_id, "group",
           case when grouping(cohort) = 1 then '(all)' else cohort end as cohort,
           course_week,
           sum(at_risk)::integer as at_risk, sum(dropped_out)::integer as dropped_out,
           sum(censored)::integer as censored
    from risk_sets
    group by grouping sets ((campaign_id, "group", cohort, course_week),
                            (campaign_id, "group", course_week))
),
estimates as (
    select *,
           case when bool_or(at_risk > 0 and dropped_out = at_risk) over history then 0
                else exp(sum(case when at_risk > 0 then ln(1 - dropped_out / at_risk) else 0 end)
                         over history)
           end as survival,
           sum(case when at_risk > dropped_out then dropped_out / (at_risk * (at_risk - dropped_out))
                    else 0 end) over history as greenwood
    from pooled
    window history as (partition by campaign_id, cohort, "group" order by course_week
                       rows between unbounded preceding and current row)
)
select campaign_id, cohort, "group", course_week, at_risk, dropped_out, censored,
       survival, 1 - survival as dropout,
       survival * sqrt(greenwood) as se,
       greatest(0, survival - 1.959963984540054 * survival * sqrt(greenwood)) as low,
       least(1, survival + 1.959963984540054 * survival * sqrt(greenwood)) as high
from estimates
