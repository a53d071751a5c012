-- Provider events (incoming_events, registered by relance/feedback/events.py) into the warehouse.

-- Each event once: SendGrid may post the same event again (it retries until it gets a 2xx).
insert into message_events (event_id, message_id, campaign_id, email, event, occurred_at,
                            reason, provider_message_id, source, payload)
select i.event_id, m.message_id, coalesce(m.campaign_id, i.campaign_id), lower(i.email),
       i.event, i.occurred_at, i.reason, i.provider_message_id, $source, i.payload::json
from (select distinct on (event_id) * from incoming_events) i
left join messages m on m.message_id = i.message_id
where not exists (select 1 from message_events e where e.event_id = i.event_id);

-- Addresses that must get no more mail: a bounce (not a block, which is the receiving
-- server's temporary refusal), a spam report, an unsubscribe (every campaign), a group
-- unsubscribe (the campaign of the message it came from), and addresses SendGrid itself
-- dropped as bounced, unsubscribed or reported.
insert into suppressions (email, campaign_id, reason, source, created_at)
with wanted as (
    select distinct
        lower(i.email) as email,
        case when i.event = 'group_unsubscribe' then coalesce(m.campaign_id, i.campaign_id) end
            as campaign_id,
        case when i.event in ('bounce', 'spamreport', 'dropped') then i.event else 'unsubscribe' end
            as reason
    from incoming_events i
    left join messages m on m.message_id = i.message_id
    where (i.event = 'bounce' and coalesce(i.bounce_type, 'bounce') = 'bounce')
       or i.event in ('spamreport', 'unsubscribe', 'group_unsubscribe')
       or (i.event = 'dropped'
           and regexp_matches(lower(coalesce(i.reason, '')), 'bounced|unsubscribed|spam'))
)
select w.email, w.campaign_id, w.reason, 'sendgrid events: ' || $source, $now
from wanted w
where not exists (select 1 from suppressions s
                  where s.email = w.email and s.campaign_id is not distinct from w.campaign_id);

-- Any event about a message proves SendGrid accepted it: an uncertain one was sent.
update messages
set status = 'sent',
    sent_at = ev.first_at,
    provider_message_id = coalesce(messages.provider_message_id, ev.provider_message_id),
    error = 'was uncertain; SendGrid reported it (' || ev.first_event || ')'
from (select message_id, min(occurred_at) as first_at, arg_min(event, occurred_at) as first_event,
             any_value(provider_message_id) as provider_message_id
      from incoming_events where message_id is not null group by message_id) ev
where messages.message_id = ev.message_id and messages.status = 'uncertain';
