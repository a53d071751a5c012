-- No occasion twice: no other message of the same campaign, message, learner and course
-- went out for the same occasion: the same idempotency key, the same milestone or
-- activity, or (a weekly message) the same local week.
insert into sim_violations
select 'occasion', t.campaign_id, t.learner_id, t.message_id, t.sent_moment,
       t.message_key || ' (' || t.trigger || ') already sent as ' || o.message_id || ' at '
       || strftime(timezone(t.learner_tz, s.sent_moment), '%Y-%m-%d %H:%M')
from sim_tick t
join messages o
  on o.campaign_id = t.campaign_id and o.message_key = t.message_key
 and o.learner_id = t.learner_id and o.course_id = t.course_id and o.message_id <> t.message_id
join sim_sends s on s.message_id = o.message_id
where o.idempotency_key = t.idempotency_key
   or (o.trigger = t.trigger and (t.trigger like 'milestone:%' or t.trigger like 'activity:%'))
   or (t.trigger in ('every', 'while_in', 'digest') and o.trigger = t.trigger
       and date_trunc('week', timezone(t.learner_tz, s.sent_moment))
           = date_trunc('week', timezone(t.learner_tz, t.sent_moment)))
qualify row_number() over (partition by t.message_id order by s.sent_moment) = 1
