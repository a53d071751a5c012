-- kpi_base: one row per enrolment (learner and course), measured at the KPI clock: when
-- the learner started, was last seen, completed, certified, withdrew or went silent.
-- Every kpi_* view counts these rows; the definitions live here, once.
--
-- The KPI clock (`as_of`) is warehouse_meta 'kpi_as_of' if set, else the demo's date, else
-- the latest moment the warehouse knows of (last event or run, never after now): an export
-- loaded on Friday is measured as of its last event, not as of the day someone looks.
--   started     any recorded activity.
--   completed   LMS completion (status 'completed' or a completion date up to the clock).
--   certified   a 'passed' event on an activity of kind exam / certification / certificate;
--               null on courses that have no such activity.
--   withdrawn   unregistered (withdrawn_at up to the clock, or status 'withdrawn').
--   silent      neither completed nor withdrawn, and nothing recorded for 21 days or more.
--   dropped_out withdrawn or silent; dropout_at: the withdrawal, or when last seen.
create or replace view kpi_base as
with clock as (
    select coalesce(
        try_cast((select value from warehouse_meta where key = 'kpi_as_of') as timestamptz),
        try_cast((select value from warehouse_meta where key = 'demo_as_of') as timestamptz),
        greatest((select max(occurred_at) from progress_events where occurred_at <= now()),
                 (select max(as_of) from campaign_runs where as_of <= now())),
        now()) as as_of
),
seen as (
    select p.learner_id, p.course_id, min(p.occurred_at) as first_activity_at,
           max(p.occurred_at) as last_activity_at
    from progress_events p, clock
    where p.occurred_at <= clock.as_of
    group by all
),
certifying as (
    select distinct course_id from activities
    where lower(kind) in ('exam', 'certification', 'certificate')
),
certified as (
    select distinct p.learner_id, p.course_id
    from progress_events p
    join activities a using (course_id, activity_id), clock
    where p.verb = 'passed' and p.occurred_at <= clock.as_of
      and lower(a.kind) in ('exam', 'certification', 'certificate')
),
status as (
    select
        e.learner_id, e.course_id, e.cohort, e.enrolled_at, clock.as_of,
        coalesce(c.starts_on, e.enrolled_at::date) as course_start,
        c.ends_on,
        s.first_activity_at, s.last_activity_at,
        s.first_activity_at is not null as started,
        coalesce(e.completed_at <= clock.as_of, e.status = 'completed') as completed,
        coalesce(e.withdrawn_at <= clock.as_of, e.status = 'withdrawn') as withdrawn,
        e.withdrawn_at,
        case when cc.course_id is null then null else ce.learner_id is not null end as certified
    from enrolments e
    join courses c using (course_id)
    cross join clock
    left join seen s using (learner_id, course_id)
    left join certifying cc using (course_id)
    left join certified ce using (learner_id, course_id)
    where e.enrolled_at <= clock.as_of
)
select
    *,
    not completed and not withdrawn
        and coalesce(last_activity_at, enrolled_at) <= as_of - interval 21 day as silent,
    not completed and (withdrawn
        or coalesce(last_activity_at, enrolled_at) <= as_of - interval 21 day) as dropped_out,
    case
        when completed then null
        when withdrawn then coalesce(withdrawn_at, last_activity_at, enrolled_at)
        when coalesce(last_activity_at, enrolled_at) <= as_of - interval 21 day
            then coalesce(last_activity_at, enrolled_at)
    end as dropout_at
from status
