-- kpi_variants: one row per campaign, message, variant (test and learn) and metric:
-- 'opened' and 'clicked' (per message sent), 'reengaged_7d' (per message sent whose 7
-- days are over), 'completion' (per learner who got the variant; kpi_base). Each variant
-- is compared with the message's other variants together: rates, difference and its 95%
-- Newcombe interval. `verdict`: 'too_early' (too few to tell: under 30 messages or
-- learners on a side, or under 5 with or without the outcome), 'no_clear_difference'
-- (the interval contains 0), 'winner' (better than the others), 'behind'.
create or replace view kpi_variants as
with sent as (
    select * from kpi_message_outcomes where sent and variant is not null
),
learners as (
    select distinct s.campaign_id, s.message_key, s.variant, b.completed
    , s.learner_id, s.course_id
    from sent s join kpi_base b using (learner_id, course_id)
),
per_metric as (
    select campaign_id, message_key, variant, 'opened' as metric,
           count(*) as n, count(*) filter (where opened) as k
    from sent group by all
    union all
    select campaign_id, message_key, variant, 'clicked', count(*), count(*) filter (where clicked)
    from sent group by all
    union all
    select campaign_id, message_key, variant, 'reengaged_7d', count(reengaged_7d),
           count(*) filter (where reengaged_7d)
    from sent group by all
    union all
    select campaign_id, message_key, variant, 'completion', count(*), count(*) filter (where completed)
    from learners group by all
),
versus as (
    select *,
           sum(n) over others - n as n_rest,
           sum(k) over others - k as k_rest
    from per_metric
    window others as (partition by campaign_id, message_key, metric)
)
select
    campaign_id, message_key, variant, metric,
    n, k, k / nullif(n, 0) as rate,
    n_rest, k_rest, k_rest / nullif(n_rest, 0) as rate_rest,
    k / nullif(n, 0) - k_rest / nullif(n_rest, 0) as difference,
    newcombe_low(k, nullif(n, 0), k_rest, nullif(n_rest, 0)) as ci_low,
    newcombe_high(k, nullif(n, 0), k_rest, nullif(n_rest, 0)) as ci_high,
    case
        when too_small(k, n, k_rest, n_rest) then 'too_early'
        when newcombe_low(k, n, k_rest, n_rest) > 0 then 'winner'
        when newcombe_high(k, n, k_rest, n_rest) < 0 then 'behind'
        else 'no_clear_difference'
    end as verdict
from versus
