-- eval_clock: one row per timezone of the audience: $as_of in that timezone, its local
-- calendar week, the start of that week, and each weekly (`every`) message's send moment
-- and week there. Computed once per timezone rather than once per learner (timezone
-- conversions are the costly part of the send-window policies).
create or replace temp table eval_clock as
with zones as (
    select
        tz,
        timezone(tz, $as_of)                               as local_as_of,
        date_trunc('week', timezone(tz, $as_of))           as local_week_start,
        strftime(timezone(tz, $as_of), '%G-W%V')           as local_week
    from (select distinct tz from eval_audience)
),
moments as (
    select */*@every*/
    from zones
)
select */*@every_derived*/
from moments
