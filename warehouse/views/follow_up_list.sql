-- follow_up_list: one row per learner a community manager should contact, from each
-- campaign's latest run, with how to reach them and why.
create or replace view follow_up_list as
with latest as (
    select campaign_id, arg_max(run_id, started_at) as run_id
    from campaign_runs
    where status = 'succeeded'
    group by all
)
select
    f.campaign_id, f.rule, f.reason, f.learner_id, l.first_name, l.last_name, l.email,
    l.manager_email, f.course_id, f.stage, d.progress, d.inactive_days, d.overdue,
    d.stalled_days, f.created_at
from follow_ups f
join latest using (campaign_id, run_id)
join learners l using (learner_id)
left join decisions d
    on d.run_id = f.run_id and d.learner_id = f.learner_id and d.course_id = f.course_id
