-- follow_up_list: one row per learner a community manager should contact, from each
-- campaign's latest run, with how to reach them, why, the moment the run judged them
-- (`as_of`, the run's logical time) and when they were last seen active by then.
create or replace view follow_up_list as
with latest as (
    select campaign_id, arg_max(run_id, started_at) as run_id
    from campaign_runs
    where status = 'succeeded'
    group by all
),
listed as (
    select f.*, r.as_of
    from follow_ups f
    join latest using (campaign_id, run_id)
    join campaign_runs r using (run_id)
),
last_seen as (
    -- the learner's last sign of activity in the course up to the run's as_of
    select l.learner_id, l.course_id, l.run_id, max(p.occurred_at) as last_activity_at
    from listed l
    join progress_events p
        on p.learner_id = l.learner_id and p.course_id = l.course_id and p.occurred_at <= l.as_of
    group by all
)
select
    f.campaign_id, f.rule, f.reason, f.learner_id, l.first_name, l.last_name, l.email,
    l.manager_email, f.course_id, f.stage, d.progress, d.inactive_days, d.overdue,
    d.stalled_days, s.last_activity_at, f.as_of, f.created_at
from listed f
join learners l using (learner_id)
left join decisions d
    on d.run_id = f.run_id and d.learner_id = f.learner_id and d.course_id = f.course_id
left join last_seen s
    on s.run_id = f.run_id and s.learner_id = f.learner_id and s.course_id = f.course_id
