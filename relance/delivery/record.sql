-- Records the channel's verdict on one batch (the lists $ids, $statuses ..., one item per
-- message, zipped by unnest) in the ledger: a message
-- the channel took is sent at the delivery's moment ($now, relance's clock, the Date: it
-- carries) and was taken at r.sent_at by the wall clock.
update messages
set status              = r.status,
    subject             = coalesce(r.subject, messages.subject),
    sent_at             = case when r.sent_at is not null then $now end,
    sent_wall_at        = r.sent_at,
    attempts            = messages.attempts + 1,
    error               = r.error,
    provider_message_id = r.provider_message_id
from (select unnest($ids::varchar[])              as message_id,
             unnest($statuses::varchar[])         as status,
             unnest($subjects::varchar[])         as subject,
             unnest($sent_at::timestamptz[])      as sent_at,
             unnest($errors::varchar[])           as error,
             unnest($provider_ids::varchar[])     as provider_message_id) r
where messages.message_id = r.message_id
