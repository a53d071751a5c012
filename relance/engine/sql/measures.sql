-- The measures query (not a table: stages.sql materializes it with the stages, once, as
-- eval_state): one row per learner per course of eval_audience, with every measure of
-- relance/campaign/measures.py, as of $as_of. Events after $as_of are ignored, so a past date
-- replays the past (backtests) and a rerun for the same date sees the same learners.
--
-- The events of the audience's courses (a constant IN list when the campaign names its
-- courses) are aggregated per learner first, in three scans (all events for the last
-- activity, those with a progress figure, the completions), and joined to the audience
-- after: filtering 50M events through a join with the audience costs more than
-- aggregating the few learners of those courses who are not in it. When the loaders'
-- per-learner summaries cover every event up to $as_of, they are read instead of the
-- scans (a row per learner, not fifty).
with events as (
    -- per learner and course: last activity, reported progress and when first reached
    -- (events_scan.sql, or events_summary.sql when the loaders' summaries cover $as_of)
/*@events*/
),
done as (
/*@done*/
),
course_work as (
    select course_id, sum(weight) filter (where is_required) as required_weight
    from activities
    group by all
),
due_since_enrolment as (
    -- required activities that fell due between the learner's enrolment and $as_of, per
    -- course and enrolment day (a few hundred distinct days, not a million learners)
    select d.course_id, d.enrolled_on, count(a.activity_id) as n_due
    from (select distinct course_id, enrolled_at::date as enrolled_on from eval_audience) d
    left join activities a
        on a.course_id = d.course_id and a.is_required
       and a.due_at <= $as_of and a.due_at::date > d.enrolled_on
    group by all
),
learner_work as (
    select
        d.learner_id,
        d.course_id,
        sum(a.weight) filter (where a.is_required)                   as done_weight,
        count(*) filter (where a.is_required and a.due_at <= $as_of) as n_done_due,
        max(d.done_at)                                               as last_done_at
    from done d
    join activities a using (course_id, activity_id)
    group by all
),
joined as (
    select
        a.*,
        clock.local_as_of::date                                      as local_today,
        e.last_activity_at,
        e.reported_progress,
        greatest(e.best_progress_at, w.last_done_at)                 as last_progress_at,
        coalesce(w.done_weight, 0) / nullif(cw.required_weight, 0)   as done_share,
        -- due since they enrolled, less what they have done of what is due (earlier
        -- activities done count: catching up is progress)
        greatest(coalesce(ds.n_due, 0) - coalesce(w.n_done_due, 0), 0)  as overdue,
        coalesce(a.completed_at <= $as_of, false)
            or (a.status = 'completed' and a.completed_at is null)   as lms_completed
    from eval_audience a
    join eval_clock clock using (tz)
    left join events e using (learner_id, course_id)
    left join learner_work w using (learner_id, course_id)
    left join course_work cw using (course_id)
    left join due_since_enrolment ds
        on ds.course_id = a.course_id and ds.enrolled_on = a.enrolled_at::date
),
final as (
    select
        *,
        round(case
            when lms_completed then 100
            else least(100, 100 * greatest(coalesce(reported_progress, 0), coalesce(done_share, 0)))
        end, 1)                                                                   as progress,
        floor((epoch($as_of) - epoch(coalesce(last_activity_at, enrolled_at))) / 86400)::integer
                                                                                  as inactive_days,
        floor((epoch($as_of) - epoch(enrolled_at)) / 86400)::integer              as enrolled_days,
        floor((epoch($as_of) - epoch(coalesce(last_progress_at, enrolled_at))) / 86400)::integer
                                                                                  as stalled_days,
        -- calendar days in the learner's own timezone
        (floor(date_diff('day', coalesce(starts_on, enrolled_at::date), local_today) / 7) + 1)::integer
                                                                                  as course_week,
        date_diff('day', local_today, ends_on)                                    as days_left,
        last_activity_at is not null                                              as started,
        lms_completed or coalesce(least(100, 100 * greatest(coalesce(reported_progress, 0),
                                  coalesce(done_share, 0))) >= 100, false)        as completed,
        coalesce(ends_on < local_today, false)                                    as course_ended
    from joined
)
select * exclude (reported_progress, done_share, lms_completed, local_today) from final
