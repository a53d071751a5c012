-- Messages of attempts still 'in_flight' when a delivery starts: the process that made the
-- request died before recording the answer. The provider may have accepted them, so they
-- become 'uncertain' (never resent blindly), unless the attempt's channel recognises what
-- it already delivered ($resend_channel, the outbox): those stay as they were and go again.
update messages
set status = 'uncertain',
    attempts = messages.attempts + 1,
    error = 'uncertain: in flight in attempt ' || a.attempt_id || ' (' || a.channel
            || ', process ' || coalesce(a.pid::varchar, '?') || ', started '
            || strftime(a.started_at, '%Y-%m-%d %H:%M:%S') || ' UTC) when its delivery stopped; '
            || 'the provider may have accepted it. Check its activity log, then '
            || '`relance uncertain resend` or `relance uncertain confirm`'
from send_attempt_messages am
join send_attempts a using (attempt_id)
where a.state = 'in_flight'
  and a.campaign_id = $campaign_id
  and a.channel <> $resend_channel
  and messages.message_id = am.message_id
  and messages.status in ('planned', 'failed')
returning messages.message_id
