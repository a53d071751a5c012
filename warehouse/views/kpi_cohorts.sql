-- kpi_cohorts: one row per campaign, course and cohort (campaign_id '(all)' for every
-- enrolment of the course and cohort, evaluated by a campaign or not): enrolled, started,
-- completed, certified, withdrawn, silent and dropped-out learners and their rates, as of
-- the KPI clock (definitions in kpi_base). Rates are shares of the enrolled, 0..1;
-- certifiable: enrolments on courses with a certifying activity (certification_rate's
-- denominator); certification_rate is null where the course has none.
create or replace view kpi_cohorts as
with rows as (
    select '(all)' as campaign_id, * from kpi_base
    union all by name
    select * exclude ("group", first_evaluated_at, messages_sent) from kpi_campaign_learners
)
select
    campaign_id, course_id, cohort,
    any_value(as_of)                             as as_of,
    count(*)                                     as enrolled,
    count(*) filter (where started)              as started,
    count(*) filter (where completed)            as completed,
    count(*) filter (where certified)            as certified,
    count(certified)                             as certifiable,
    count(*) filter (where withdrawn)            as withdrawn,
    count(*) filter (where silent)               as silent,
    count(*) filter (where dropped_out)          as dropped_out,
    round(count(*) filter (where started) / count(*), 4)      as start_rate,
    round(count(*) filter (where completed) / count(*), 4)    as completion_rate,
    round(count(*) filter (where certified) / nullif(count(certified), 0), 4) as certification_rate,
    round(count(*) filter (where dropped_out) / count(*), 4)  as dropout_rate
from rows
group by all
