-- Risk features: one row per learner and course of the audience (learner_id, course_id,
-- enrolled_at, course_start), as of $as_of, from behaviour only: when they registered,
-- what they handed in and how late, how their activity goes, and their study history
-- (previous attempts at the course, credits studied at once: study_history). Never
-- gender, age, disability, region, deprivation or prior education: the warehouse model
-- does not even hold them.
-- Read by the engine (the `risk` measure) and by relance.roi.risk (training, AUC).
with aud as (
    /*@audience*/
),
due as (
    select a.learner_id, a.course_id, act.activity_id, act.due_at, act.weight
    from aud a
    join activities act
      on act.course_id = a.course_id and act.is_required and act.due_at <= $as_of
     -- coursework only, as the late_days and behind measures: an exam is sat at the end and
     -- seldom recorded as handed in, so every passer would look as if they had missed it
     and lower(coalesce(act.kind, '')) not in ('exam', 'certification', 'certificate')
),
done as (
    select p.learner_id, p.course_id, p.activity_id, min(p.occurred_at) as done_at
    from progress_events p
    where p.occurred_at <= $as_of and p.activity_id is not null and is_completion(p.verb)
      and p.course_id in (select distinct course_id from aud)
    group by all
),
work as (
    select d.learner_id, d.course_id,
           count(*)                                                   as n_due,
           count(x.done_at)                                           as n_done,
           count(*) filter (where x.done_at > d.due_at)               as n_late,
           sum(d.weight) filter (where x.done_at is null)             as missed_weight,
           sum(d.weight)                                              as due_weight,
           max(x.done_at)                                             as last_done_at,
           min(d.due_at) filter (where x.done_at is null)             as oldest_missed_due_at,
           -- days late on each due activity: when handed in, or so far if not yet
           avg(greatest(0, epoch(coalesce(x.done_at, $as_of) - d.due_at) / 86400)) as mean_days_late
    from due d
    left join done x using (learner_id, course_id, activity_id)
    group by all
),
activity as (
    select p.learner_id, p.course_id,
           count(*)                                                               as n_events,
           count(*) filter (where p.occurred_at > $as_of - interval 14 day)        as recent,
           count(*) filter (where p.occurred_at <= $as_of - interval 14 day
                              and p.occurred_at > $as_of - interval 28 day)        as prior,
           max(p.occurred_at)                                                     as last_at
    from progress_events p
    where p.occurred_at <= $as_of and p.course_id in (select distinct course_id from aud)
    group by all
)
select
    a.learner_id, a.course_id,
    -- registration timing: days between registering and the course start (late = positive)
    least(greatest(date_diff('day', a.course_start, a.enrolled_at::date), -60), 60)::double as registered_day,
    coalesce(w.n_done / nullif(w.n_due, 0), 1)::double                        as done_share,
    coalesce(w.n_late / nullif(w.n_due, 0), 0)::double                        as late_share,
    least(coalesce(w.mean_days_late, 0), 60)::double                           as mean_days_late,
    coalesce(w.n_due - w.n_done, 0)::double                                   as overdue,
    -- weighted: an unsubmitted assessment that counts weighs more than a practice quiz
    coalesce(w.missed_weight / nullif(w.due_weight, 0), 0)::double            as missed_weight_share,
    -- the late_days measure: days since the oldest deadline missed and still not made up
    least(coalesce(floor(epoch($as_of - w.oldest_missed_due_at) / 86400), 0), 120)::double
                                                                              as late_days,
    least(floor(epoch($as_of - coalesce(w.last_done_at, greatest(a.enrolled_at, a.course_start::timestamptz))) / 86400), 120)::double
                                                                              as days_since_hand_in,
    least(floor(epoch($as_of - coalesce(v.last_at, greatest(a.enrolled_at, a.course_start::timestamptz))) / 86400), 120)::double
                                                                              as idle_days,
    ln(1 + coalesce(v.n_events, 0))                                           as log_events,
    ln(1 + coalesce(v.recent, 0)) - ln(1 + coalesce(v.prior, 0))              as activity_trend,
    greatest(0, date_diff('day', a.course_start, $as_of::date))::double        as course_day,
    -- study history (0 when the source does not say): tried before, studying much at once
    least(coalesce(h.previous_attempts, 0), 6)::double                         as previous_attempts,
    ln(1 + coalesce(h.credits, 0))::double                                    as log_credits
from aud a
left join work w using (learner_id, course_id)
left join activity v using (learner_id, course_id)
left join study_history h using (learner_id, course_id)
