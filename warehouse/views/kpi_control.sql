-- kpi_control: one row per campaign, message ('(campaign)' for the whole campaign) and
-- outcome ('completion', 'dropout'): learners and outcomes in the treated group and in the
-- control group, the difference of the two rates (treated - control) and its 95%
-- confidence interval, Newcombe's hybrid score interval (Wilson bounds of each rate
-- combined; Newcombe 1998, method 10: macros newcombe_low/high in warehouse/macros.sql)
-- and the Wald interval beside it for reference.
--
-- Intention to treat: for the campaign, every learner it evaluated, messaged or not; for
-- a message, every learner it was proposed to (a candidate in some run), the control
-- group's candidates being the ones its policy held back. Outcomes as in kpi_base.
-- `verdict`: 'too_small' when either group has fewer than 30 learners or fewer than 5 with
-- or without the outcome (the interval is then not to be trusted), else 'no_clear_difference'
-- when the interval contains 0, else 'higher_with_campaign' / 'lower_with_campaign'.
create or replace view kpi_control as
with proposed as (
    select distinct campaign_id, message_key, learner_id, course_id from candidates
),
scoped as (
    select '(campaign)' as message_key, l.* from kpi_campaign_learners l
    union all by name
    select p.message_key, l.*
    from proposed p join kpi_campaign_learners l using (campaign_id, learner_id, course_id)
),
outcomes as (
    select campaign_id, message_key, 'completion' as outcome, "group", completed as hit from scoped
    union all
    select campaign_id, message_key, 'dropout' as outcome, "group", dropped_out as hit from scoped
),
counts as (
    select campaign_id, message_key, outcome,
           count(*) filter (where "group" = 'treated')                 as n_treated,
           count(*) filter (where "group" = 'treated' and hit)         as k_treated,
           count(*) filter (where "group" = 'control')                 as n_control,
           count(*) filter (where "group" = 'control' and hit)         as k_control
    from outcomes
    group by all
),
intervals as (
    select *,
        k_treated / nullif(n_treated, 0) as p_t,
        k_control / nullif(n_control, 0) as p_c,
        k_treated / nullif(n_treated, 0) - k_control / nullif(n_control, 0) as difference,
        newcombe_low(k_treated, nullif(n_treated, 0), k_control, nullif(n_control, 0)) as ci_low,
        newcombe_high(k_treated, nullif(n_treated, 0), k_control, nullif(n_control, 0)) as ci_high,
        p_t - p_c - 1.959963984540054 * sqrt(p_t * (1 - p_t) / n_treated + p_c * (1 - p_c) / n_control) as wald_low,
        p_t - p_c + 1.959963984540054 * sqrt(p_t * (1 - p_t) / n_treated + p_c * (1 - p_c) / n_control) as wald_high
    from counts
)
select
    campaign_id, message_key, outcome,
    n_treated, k_treated, p_t as rate_treated,
    n_control, k_control, p_c as rate_control,
    difference, ci_low, ci_high, wald_low, wald_high,
    case
        when too_small(k_treated, n_treated, k_control, n_control) then 'too_small'
        when ci_low <= 0 and ci_high >= 0 then 'no_clear_difference'
        when ci_low > 0 then 'higher_with_campaign'
        else 'lower_with_campaign'
    end as verdict,
    case
        when too_small(k_treated, n_treated, k_control, n_control)
            then 'Too few learners to tell: ' || n_treated || ' treated and ' || n_control
                 || ' in the control group, ' || k_treated || ' and ' || k_control || ' with '
                 || outcome || '. Needs at least 30 in each group and 5 with and without it.'
    end as warning
from intervals
