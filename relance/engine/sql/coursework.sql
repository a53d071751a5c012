-- The coursework measures (late_days, behind): one row per learner per course of
-- eval_audience, as of $as_of. Joined to the measures query only for campaigns whose
-- conditions name them (engine.measures_sql): on 300,000 learners with 24 deadlines
-- passed it adds about 1.5 s and 0.6 GiB to an evaluation (bench figures in
-- HANDOFF-backtest.md).
--
-- Coursework is every required activity but exams: an exam is sat at the end, and exports
-- seldom record it as handed in (OULAD does not), so every passer would seem to owe it.
-- Handing in late makes up for a missed deadline.
with done as (
/*@done*/
),
coursework_due as (
    -- required coursework that fell due since each enrolment day (a few hundred distinct
    -- days per course, not a row per learner)
    select d.course_id, d.enrolled_on, a.activity_id, a.due_at, coalesce(a.weight, 0) as weight
    from (select distinct course_id, enrolled_at::date as enrolled_on from eval_audience) d
    join activities a
        on a.course_id = d.course_id and a.is_required
       and a.due_at <= $as_of and a.due_at::date > d.enrolled_on
       and lower(coalesce(a.kind, '')) not in ('exam', 'certification', 'certificate')
),
missed as (
    -- per learner: the oldest deadline among the coursework due and not handed in, and the
    -- weight due and missed
    select e.learner_id, e.course_id,
           min(c.due_at) filter (where x.done_at is null)   as oldest_missed_due_at,
           sum(c.weight)                                    as due_weight,
           sum(c.weight) filter (where x.done_at is null)   as missed_weight
    from eval_audience e
    join coursework_due c on c.course_id = e.course_id and c.enrolled_on = e.enrolled_at::date
    left join done x
        on x.learner_id = e.learner_id and x.course_id = e.course_id and x.activity_id = c.activity_id
    group by all
)
select
    e.learner_id,
    e.course_id,
    coalesce(floor((epoch($as_of) - epoch(ms.oldest_missed_due_at)) / 86400)::integer, 0) as late_days,
    -- weight-0 coursework (practice) puts nobody behind
    coalesce(round(100 * ms.missed_weight / nullif(ms.due_weight, 0), 1), 0)::double      as behind
from eval_audience e
left join missed ms on ms.learner_id = e.learner_id and ms.course_id = e.course_id
