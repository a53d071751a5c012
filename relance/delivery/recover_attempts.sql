-- Ends the attempts a dead delivery left open, once recover.sql has marked their messages.
-- One still 'connecting' stopped before its connection was up: nothing of it left, so it
-- is 'abandoned' and its messages are due as they were. One 'in_flight' may have reached
-- the provider: 'uncertain', unless its channel recognises what it already delivered
-- ($resend_channel, the outbox), whose messages simply go again ('abandoned').
update send_attempts
set state = case when state = 'connecting' or channel = $resend_channel then 'abandoned'
                 else 'uncertain' end,
    finished_at = $now,
    note = case when state = 'connecting'
                then 'its delivery stopped before its connection was up: nothing was sent'
                else note end
where campaign_id = $campaign_id
  and state in ('connecting', 'in_flight')
