-- kpi_control_strata: one row per campaign, course, cohort and outcome ('completion',
-- 'dropout'): the whole campaign's treated and control groups (as in kpi_control) within
-- one course and cohort, their difference (treated - control) and its variance
-- p_t (1 - p_t) / n_t + p_c (1 - p_c) / n_c, the weight of the stratum in kpi_pooled.
-- A stratum where both rates are 0 or 1 has variance 0: it says nothing yet (weight null).
create or replace view kpi_control_strata as
with outcomes as (
    select campaign_id, course_id, cohort, 'completion' as outcome, "group", completed as hit
    from kpi_campaign_learners
    union all
    select campaign_id, course_id, cohort, 'dropout', "group", dropped_out from kpi_campaign_learners
),
counts as (
    select campaign_id, course_id, cohort, outcome,
           count(*) filter (where "group" = 'treated')          as n_treated,
           count(*) filter (where "group" = 'treated' and hit)  as k_treated,
           count(*) filter (where "group" = 'control')          as n_control,
           count(*) filter (where "group" = 'control' and hit)  as k_control
    from outcomes
    group by all
)
select *,
       k_treated / nullif(n_treated, 0) - k_control / nullif(n_control, 0) as difference,
       (k_treated / nullif(n_treated, 0)) * (1 - k_treated / nullif(n_treated, 0)) / nullif(n_treated, 0)
       + (k_control / nullif(n_control, 0)) * (1 - k_control / nullif(n_control, 0)) / nullif(n_control, 0)
           as variance
from counts
