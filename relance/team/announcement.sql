-- The cohort's week for its announcement to the team channel (team.announcement), as of
-- run $run_id. Grain: one row: the run's numbers (learners per stage, control group,
-- messages, follow-ups, last week's activity) and, per course of the run, its calendar for
-- the coming week. Everything comes from the run's decisions, so the numbers are those the
-- summary post and the run's report give.
with run as (
    select run_id, as_of, timezone($timezone, as_of) as local_as_of,
           coalesce(n_sent, 0) as sent, coalesce(n_failed, 0) as failed,
           coalesce(n_deferred, 0) as deferred, coalesce(n_suppressed, 0) as suppressed,
           coalesce(n_follow_ups, 0) as follow_ups
    from campaign_runs
    where run_id = $run_id
),
decided as (
    select d.learner_id, d.course_id, d.stage, d.is_holdout, d.course_week
    from decisions d
    where d.run_id = $run_id
),
stages as (
    select list({'stage': stage, 'learners': n} order by n desc, stage) as items
    from (select stage, count(*) as n from decided where stage is not null group by stage)
),
last_week as (
    -- who did something in the seven days up to the run, among the run's learners
    select count(distinct p.learner_id) as active,
           count(*) filter (where is_completion(p.verb)) as completed_activities
    from progress_events p
    join decided d on d.learner_id = p.learner_id and d.course_id = p.course_id
    cross join run r
    where p.occurred_at > r.as_of - interval 7 day and p.occurred_at <= r.as_of
),
course_weeks as (
    -- the course's week on the run's day in the campaign's timezone (week 1 = the week it
    -- starts); a course without a start date takes the week most of its learners are in
    select d.course_id, c.title, c.url, c.forum_url, c.starts_on, c.ends_on,
           coalesce((floor(date_diff('day', c.starts_on, r.local_as_of::date) / 7)
                     + 1)::integer, mode(d.course_week)) as week,
           (date_diff('day', c.starts_on, c.ends_on) // 7 + 1)::integer as weeks,
           count(distinct d.learner_id) as learners
    from decided d
    join courses c using (course_id)
    cross join run r
    group by d.course_id, c.title, c.url, c.forum_url, c.starts_on, c.ends_on, r.local_as_of
),
this_week as (
    -- as in messages' `this_week`: the activities of the course's current week, and those
    -- due in the seven days from the run
    select w.course_id,
           list({'id': a.activity_id, 'title': a.title, 'kind': a.kind, 'week': a.week,
                 'due_at': a.due_at, 'url': a.url}
                order by a.due_at nulls last, a.weight, a.title) as items
    from course_weeks w
    join activities a on a.course_id = w.course_id
    cross join run r
    where a.week = w.week
       or (a.due_at >= r.as_of and a.due_at < r.as_of + interval 7 day)
    group by all
),
courses as (
    select list({'id': w.course_id, 'title': w.title, 'url': w.url, 'forum_url': w.forum_url,
                 'starts_on': w.starts_on, 'ends_on': w.ends_on, 'week': w.week,
                 'weeks': w.weeks, 'learners': w.learners,
                 'this_week': coalesce(t.items, [])} order by w.course_id) as items
    from course_weeks w
    left join this_week t using (course_id)
)
select r.as_of,
       strftime(r.local_as_of, '%G-W%V') as week,
       (select count(distinct learner_id) from decided) as learners,
       (select count(*) from decided where is_holdout) as control_group,
       coalesce((select items from stages), []) as stages,
       r.sent, r.failed, r.deferred, r.suppressed, r.follow_ups,
       coalesce(l.active, 0) as active_last_week,
       coalesce(l.completed_activities, 0) as completed_activities_last_week,
       coalesce((select items from courses), []) as courses
from run r
cross join last_week l
