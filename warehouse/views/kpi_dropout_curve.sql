-- kpi_dropout_curve: one row per campaign, course, cohort, group and course week, from week
-- 1 to the KPI clock's: learners the campaign evaluated (group 'treated' or 'control'; for
-- campaign_id '(all)', every enrolment, group 'all') and how many of them had dropped out
-- by the end of that course week (withdrawn, or last seen then and silent since:
-- kpi_base). Course week 1 starts on the course's start date.
create or replace view kpi_dropout_curve as
with rows as (
    select campaign_id, "group", course_id, cohort, course_start, as_of, dropout_at
    from kpi_campaign_learners
    union all
    select '(all)', 'all', course_id, cohort, course_start, as_of, dropout_at from kpi_base
),
learners as (
    select campaign_id, "group", course_id, cohort, course_start, as_of,
           case when dropout_at is not null
                then floor(date_diff('day', course_start, dropout_at::date) / 7)::integer + 1 end
               as dropout_week
    from rows
),
spans as (
    select campaign_id, "group", course_id, cohort,
           greatest(1, max(floor(date_diff('day', course_start, as_of::date) / 7)::integer + 1)) as last_week
    from learners
    group by all
),
weeks as (
    select campaign_id, "group", course_id, cohort,
           unnest(generate_series(1, last_week)) as course_week
    from spans
)
select w.campaign_id, w.course_id, w.cohort, w."group", w.course_week,
       count(*)                                               as learners,
       count(*) filter (where l.dropout_week <= w.course_week) as dropped_out,
       round(count(*) filter (where l.dropout_week <= w.course_week) / count(*), 4) as dropout_share
from weeks w
join learners l
  on l.campaign_id = w.campaign_id and l."group" = w."group" and l.course_id = w.course_id
 and l.cohort is not distinct from w.cohort
group by all
