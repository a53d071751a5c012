-- Records the channel's verdict on one batch (delivery_results) in the ledger.
update messages
set status              = r.status,
    subject             = coalesce(r.subject, messages.subject),
    sent_at             = r.sent_at,
    attempts            = messages.attempts + 1,
    error               = r.error,
    provider_message_id = r.provider_message_id
from delivery_results r
where messages.message_id = r.message_id
