-- What the engine decides and does. Written only by relance.engine and relance.delivery.

-- One row per campaign run (a plan that was executed, not a dry run).
create table campaign_runs (
    run_id            varchar primary key,
    campaign_id       varchar not null,
    campaign_sha      varchar not null,   -- hash of the campaign file and its templates
    as_of             timestamptz not null,
    started_at        timestamptz not null,
    finished_at       timestamptz,
    status            varchar not null check (status in ('running', 'succeeded', 'failed')),
    n_evaluated       integer,
    n_holdout         integer,
    n_planned         integer,            -- due now
    n_deferred        integer,            -- planned for later (quiet hours, send window, recap hour)
    n_suppressed      integer,
    n_sent            integer,
    n_failed          integer,
    n_follow_ups      integer,
    evaluate_ms       integer,
    deliver_ms        integer,
    flow_run_id       varchar,
    error             varchar
);

-- One row per learner per course per campaign: the stage the learner was last seen in,
-- and since when (lets `on_enter` fire once per entry); and when and at what progress the
-- campaign first saw them (milestones and activities count from then on, so a campaign
-- started mid-course does not congratulate old achievements).
create table stage_state (
    campaign_id     varchar not null,
    learner_id      varchar not null,
    course_id       varchar not null,
    stage           varchar,
    entered_at      timestamptz not null,
    first_seen_at   timestamptz not null,
    first_progress  double not null,
    run_id          varchar not null,
    primary key (campaign_id, learner_id, course_id)
);

-- One row per learner per course per campaign run: stage, measures, and what was decided.
create table decisions (
    run_id           varchar not null,
    campaign_id      varchar not null,
    learner_id       varchar not null,
    course_id        varchar not null,
    as_of            timestamptz not null,
    stage            varchar,
    previous_stage   varchar,
    stage_entered_at timestamptz,
    progress         double,      -- percent, 0..100
    inactive_days    integer,
    enrolled_days    integer,
    overdue          integer,
    stalled_days     integer,
    course_week      integer,
    is_started       boolean,
    is_completed     boolean,
    is_holdout       boolean not null,
    message_key      varchar,     -- the message chosen, if any
    trigger          varchar,
    outcome          varchar not null check (outcome in ('planned', 'deferred', 'suppressed', 'no_message')),
    reason           varchar,     -- why no message (or why deferred)
    primary key (run_id, learner_id, course_id)
);

-- One row per message a trigger proposed for a learner in a run, and what the policies
-- said of it. The decisions table keeps the one that won; this keeps all of them.
create table candidates (
    run_id           varchar not null,
    campaign_id      varchar not null,
    learner_id       varchar not null,
    course_id        varchar not null,
    message_key      varchar not null,
    trigger          varchar not null,
    idempotency_key  varchar not null,
    not_before       timestamptz,
    outcome          varchar not null check (outcome in ('planned', 'deferred', 'suppressed')),
    reason           varchar
);

-- The ledger: one row per message that relance committed to send. The idempotency key
-- (campaign, message, learner, course, occasion) is unique, so no occasion is sent twice.
create table messages (
    message_id           varchar primary key,
    idempotency_key      varchar not null unique,
    run_id               varchar not null,
    campaign_id          varchar not null,
    message_key          varchar not null,
    trigger              varchar not null,
    learner_id           varchar not null,
    course_id            varchar not null,
    channel              varchar not null,
    locale               varchar not null,
    to_email             varchar,
    subject              varchar,
    status               varchar not null
                         check (status in ('planned', 'sent', 'failed', 'cancelled', 'uncertain')),
    not_before           timestamptz not null,
    planned_at           timestamptz not null,
    sent_at              timestamptz,
    attempts             integer not null default 0,
    error                varchar,
    provider_message_id  varchar
);

-- One row per learner a person should contact, per run.
create table follow_ups (
    run_id         varchar not null,
    campaign_id    varchar not null,
    learner_id     varchar not null,
    course_id      varchar not null,
    rule           varchar not null,
    reason         varchar not null,
    stage          varchar,
    created_at     timestamptz not null
);

-- Small key/value facts about the warehouse itself (e.g. that it holds the demo cohort).
create table warehouse_meta (
    key    varchar primary key,
    value  varchar not null
);
