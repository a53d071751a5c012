-- No message whose premise was false when it went out. The engine has just re-evaluated
-- campaign $campaign_id as of $now for the learners in sim_recheck (eval_* tables); every
-- message of it this tick sent later than the run that planned it must still be one of its
-- candidates (same occasion, or a milestone at least as high), not refused for completion,
-- a suppression, the course's end or a missing address.
insert into sim_violations
with late as (
    select t.* from sim_tick t join campaign_runs r using (run_id)
    where t.campaign_id = $campaign_id and t.trigger <> 'digest' and r.as_of < $now
),
matched as (
    select l.message_id, l.campaign_id, l.learner_id, l.sent_moment, l.message_key, l.trigger,
           c.idempotency_key is not null as is_candidate, c.reason as refusal,
           a.learner_id is not null as in_audience, s.stage as stage_now
    from late l
    left join eval_candidates c
      on c.learner_id = l.learner_id and c.course_id = l.course_id
     and c.message_key = l.message_key
     and (c.idempotency_key = l.idempotency_key
          or (l.trigger like 'milestone:%' and c.milestone
              >= try_cast(split_part(l.trigger, ':', 2) as double)))
    left join eval_audience a on a.learner_id = l.learner_id and a.course_id = l.course_id
    left join eval_state s on s.learner_id = l.learner_id and s.course_id = l.course_id
    qualify row_number() over (partition by l.message_id order by c.milestone desc nulls last) = 1
)
select 'premise', campaign_id, learner_id, message_id, sent_moment,
       message_key || ' (' || trigger || '): ' || case
           when not in_audience then 'the learner was no longer in the audience (withdrawn)'
           when not is_candidate and trigger like 'enter:%'
               then 'the learner had left stage ' || split_part(trigger, ':', 2) || ' (now '
                    || coalesce(stage_now, 'none') || ')'
           when not is_candidate and trigger like 'activity:%'
               then 'the activity it is about no longer qualified (stage now ' || coalesce(stage_now, 'none') || ')'
           when not is_candidate
               then 'no longer a candidate (stage now ' || coalesce(stage_now, 'none') || ')'
           else 'refused by then: ' || refusal end
from matched
where not in_audience or not is_candidate
   or refusal in ('completed', 'unsubscribed', 'course_ended', 'no_email', 'invalid_email')
