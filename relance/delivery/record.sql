-- Records the channel's verdict on one batch (delivery_results) in the ledger: a message
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
from delivery_results r
where messages.message_id = r.message_id
