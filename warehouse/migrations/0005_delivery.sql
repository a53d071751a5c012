-- Delivery through providers (SendGrid, SMTP, webhooks): what was handed to them, and what
-- they said afterwards. Written only by relance.delivery and relance.events.

-- One row per request a channel was about to make to its provider, written (and committed)
-- before the request. 'in_flight' until the provider's answer is recorded in the same
-- transaction as the messages' new status; a row still 'in_flight' when the next delivery
-- starts belongs to a process that died mid-request: its messages may or may not have been
-- accepted, so they become 'uncertain' (reported, never resent blindly).
create table send_attempts (
    attempt_id    varchar primary key,
    campaign_id   varchar not null,
    channel       varchar not null,
    started_at    timestamptz not null,
    finished_at   timestamptz,
    state         varchar not null check (state in ('in_flight', 'done', 'uncertain', 'abandoned')),
    n_messages    integer not null,
    pid           integer,
    note          varchar
);

-- One row per message per send attempt.
create table send_attempt_messages (
    attempt_id  varchar not null,
    message_id  varchar not null
);

-- One row per provider event (SendGrid Event Webhook: processed, delivered, open, bounce...),
-- joined to the ledger by the message id relance put in custom_args.
create table if not exists message_events (
    event_id             varchar not null,    -- sg_event_id (unique per event at SendGrid)
    message_id           varchar,             -- custom_args.relance_message_id; null if absent
    campaign_id          varchar,
    email                varchar,
    event                varchar not null,
    occurred_at          timestamptz not null,
    reason               varchar,             -- bounce/drop reason, deferral response, url...
    provider_message_id  varchar,
    source               varchar not null,    -- 'webhook' or the imported file
    payload              json not null,
    received_at          timestamptz not null default current_timestamp
);
