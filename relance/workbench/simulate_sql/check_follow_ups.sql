-- Follow-ups consistent with stages: each follow-up a run at $now wrote names the stage the
-- run put the learner in, and that stage is one its rule is for.
insert into sim_violations
select 'follow_up', f.campaign_id, f.learner_id, null, $now,
       'follow-up ' || f.rule || ' in stage ' || coalesce(f.stage, '(none)')
       || case when d.stage is distinct from f.stage
               then ' but the run put the learner in ' || coalesce(d.stage, '(none)')
               else ', not one of its rule''s stages ' || array_to_string(r.stages, ', ') end
from follow_ups f
join campaign_runs cr on cr.run_id = f.run_id
left join sim_rules r on r.campaign_id = f.campaign_id and r.rule = f.rule
left join decisions d
  on d.run_id = f.run_id and d.learner_id = f.learner_id and d.course_id = f.course_id
where cr.as_of = $now
  and (d.stage is distinct from f.stage
       or (r.stages is not null and not list_contains(r.stages, f.stage)))
