-- One row per reply's message of delivery_batch (an acknowledgement or a forward, planned
-- by relance/replies/ingest.py): the reply it is about and its learner.
select m.message_id, m.learner_id, m.trigger, m.locale, m.to_email, m.not_before,
       r.learner_id as reply_learner_id, r.subject as reply_subject, r.category,
       r.received_at, r.body_text,
       l.first_name, l.last_name, l.email as learner_email, l.timezone,
       trim(coalesce(l.first_name, '') || ' ' || coalesce(l.last_name, '')) as learner_name
from messages m
join delivery_batch b using (message_id)
join learner_replies r
    on (m.trigger = 'reply:ack' and r.acknowledged_message_id = m.message_id)
    or (m.trigger = 'reply:forward' and r.forwarded_message_id = m.message_id)
left join learners l on l.learner_id = r.learner_id
where m.trigger in ('reply:ack', 'reply:forward')
order by m.message_id
