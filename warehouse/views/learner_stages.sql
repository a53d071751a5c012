-- learner_stages: one row per campaign, learner and course: where the learner stands at
-- the campaign's latest run (stage, since when, measures, control group).
create or replace view learner_stages as
select
    s.campaign_id,
    s.learner_id,
    s.course_id,
    l.first_name,
    l.last_name,
    l.email,
    s.stage,
    s.entered_at      as stage_entered_at,
    d.as_of,
    d.progress,
    d.inactive_days,
    d.overdue,
    d.stalled_days,
    d.is_completed,
    d.is_holdout,
    s.run_id
from stage_state s
join learners l using (learner_id)
left join decisions d
    on d.run_id = s.run_id and d.learner_id = s.learner_id and d.course_id = s.course_id
