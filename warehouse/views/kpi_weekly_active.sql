-- kpi_weekly_active: one row per course, cohort and calendar week (Monday, UTC) from the
-- course start to the KPI clock: learners enrolled at the end of the week (enrolled by
-- then, not withdrawn before), learners active in the week (any recorded activity), and
-- the share.
create or replace view kpi_weekly_active as
with clock as (select any_value(as_of) as as_of from kpi_base),
span as (
    select course_id, cohort, min(date_trunc('week', least(course_start, enrolled_at::date))) as first_week
    from kpi_base
    group by all
),
weeks as (
    select s.course_id, s.cohort, unnest(generate_series(s.first_week::timestamp,
           date_trunc('week', clock.as_of)::timestamp, interval 7 day)) as week_start
    from span s, clock
),
active as (
    select p.course_id, b.cohort, date_trunc('week', p.occurred_at)::timestamp as week_start,
           count(distinct p.learner_id) as active
    from progress_events p
    join kpi_base b using (learner_id, course_id)
    where p.occurred_at <= b.as_of
    group by all
),
enrolled as (
    select w.course_id, w.cohort, w.week_start, count(b.learner_id) as enrolled
    from weeks w
    left join kpi_base b
      on b.course_id = w.course_id and b.cohort is not distinct from w.cohort
     and b.enrolled_at < w.week_start + interval 7 day
     and not coalesce(b.withdrawn_at < w.week_start, false)
    group by all
)
select e.course_id, e.cohort, e.week_start::date as week_start, e.enrolled,
       coalesce(a.active, 0) as active,
       round(coalesce(a.active, 0) / nullif(e.enrolled, 0), 4) as active_share
from enrolled e
left join active a
  on a.course_id = e.course_id and a.cohort is not distinct from e.cohort
 and a.week_start = e.week_start
