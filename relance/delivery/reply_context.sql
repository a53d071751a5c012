-- One row per reply's message of delivery_batch (an acknowledgement or a forward, planned
-- by relance/replies/ingest.py): the reply it is about and its learner.
-- Each table is read for the batch's keys only (`in (select c from t)`, and the replies'
-- learners by the replies' message ids): on the shared warehouse these lists are sent to
-- PostgreSQL (warehouse/shared.py, push_keys and push_derived_keys), not the whole ledger,
-- replies and learners copied out for each batch.
with replies as (
    select reply_id, learner_id, subject, category, received_at, body_text,
           acknowledged_message_id, forwarded_message_id
    from learner_replies
    where acknowledged_message_id in (select message_id from delivery_batch)
    union
    select reply_id, learner_id, subject, category, received_at, body_text,
           acknowledged_message_id, forwarded_message_id
    from learner_replies
    where forwarded_message_id in (select message_id from delivery_batch)
)
select m.message_id, m.learner_id, m.trigger, m.locale, m.to_email, m.not_before,
       r.learner_id as reply_learner_id, r.subject as reply_subject, r.category,
       r.received_at, r.body_text,
       l.first_name, l.last_name, l.email as learner_email, l.timezone,
       trim(coalesce(l.first_name, '') || ' ' || coalesce(l.last_name, '')) as learner_name
from messages m
join delivery_batch b using (message_id)
join replies r
    on (m.trigger = 'reply:ack' and r.acknowledged_message_id = m.message_id)
    or (m.trigger = 'reply:forward' and r.forwarded_message_id = m.message_id)
left join learners l
    on l.learner_id = r.learner_id
   and l.learner_id in (select learner_id from learner_replies
                        where learner_id is not null
                          and (acknowledged_message_id in (select message_id from delivery_batch)
                               or forwarded_message_id in (select message_id from delivery_batch)))
where m.trigger in ('reply:ack', 'reply:forward')
  and m.message_id in (select message_id from delivery_batch)
order by m.message_id
