-- kpi_pooled: one row per campaign and outcome: the fixed-effect (inverse-variance) pooled
-- difference treated - control over the campaign's strata (kpi_control_strata: each course
-- and cohort, so every term's cohort adds to the evidence), with its 95% interval:
--   pooled = sum(w_i d_i) / sum(w_i), w_i = 1 / variance_i, se = 1 / sqrt(sum(w_i)).
-- Strata with a zero or unknown variance (no learner on a side, or both rates 0 or 1) are
-- left out and counted in `strata_left_out`. `verdict` as kpi_control's, without the
-- too-small rule (each stratum's counts are in kpi_control_strata).
create or replace view kpi_pooled as
with weighted as (
    select *, 1 / variance as w
    from kpi_control_strata
    where variance > 0 and n_treated > 0 and n_control > 0
),
sums as (
    select campaign_id, outcome,
           count(*)                          as strata,
           sum(n_treated)::integer           as n_treated,
           sum(n_control)::integer           as n_control,
           sum(w * difference) / sum(w)      as pooled,
           1 / sqrt(sum(w))                  as se
    from weighted
    group by all
),
left_out as (
    select campaign_id, outcome,
           count(*) filter (where not coalesce(variance > 0 and n_treated > 0 and n_control > 0, false))
               as strata_left_out,
           count(*) as strata_all
    from kpi_control_strata
    group by all
)
select l.campaign_id, l.outcome, coalesce(s.strata, 0) as strata, l.strata_left_out,
       s.n_treated, s.n_control, s.pooled, s.se,
       s.pooled - 1.959963984540054 * s.se as ci_low,
       s.pooled + 1.959963984540054 * s.se as ci_high,
       case
           when s.se is null then 'too_small'
           when s.pooled - 1.959963984540054 * s.se <= 0
                and s.pooled + 1.959963984540054 * s.se >= 0 then 'no_clear_difference'
           when s.pooled - 1.959963984540054 * s.se > 0 then 'higher_with_campaign'
           else 'lower_with_campaign'
       end as verdict
from left_out l
left join sums s using (campaign_id, outcome)
