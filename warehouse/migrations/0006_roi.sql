-- ROI review: what the KPI views read besides the source model and the ledger, and what
-- backtests and the risk score write. Written only by relance.roi (backtest, risk).

-- One row per provider event (SendGrid Event Webhook: processed, delivered, open, click,
-- bounce ...). The delivery migration (0005) creates this same table; it is created here
-- only if absent so that the KPI views (kpi_messages) can read it either way.
create table if not exists message_events (
    event_id             varchar not null,
    message_id           varchar,
    campaign_id          varchar,
    email                varchar,
    event                varchar not null,
    occurred_at          timestamptz not null,
    reason               varchar,
    provider_message_id  varchar,
    source               varchar not null,
    payload              json not null,
    received_at          timestamptz not null default current_timestamp
);

-- Test and learn: the variant of a message that has them (null otherwise), drawn stably
-- per learner and message when the message is planned.
alter table messages add column variant varchar;

-- One row per backtest: a campaign replayed week by week over a past cohort.
create table backtest_runs (
    backtest_id              varchar primary key,
    campaign_id              varchar not null,
    source                   varchar not null,     -- 'warehouse' or 'oulad'
    presentation             varchar,              -- e.g. '2013J'
    courses                  varchar[] not null,
    first_as_of              timestamptz,
    last_as_of               timestamptz,
    n_weeks                  integer,
    n_learners               integer,
    alert_messages           varchar[] not null,   -- messages that count as reaching a learner at risk
    lead_days                integer not null,     -- "reached in time": at least this many days before leaving
    early_leaver_days        integer not null,     -- leavers before this course day are reported apart
    n_withdrawers            integer,              -- who left on day >= early_leaver_days
    n_reached                integer,
    n_early_leavers          integer,
    n_early_reached          integer,
    n_passers                integer,
    n_flagged_passers        integer,
    n_messages               integer,
    messages_per_learner_week double,
    started_at               timestamptz not null,
    finished_at              timestamptz,
    status                   varchar not null check (status in ('running', 'succeeded', 'failed')),
    error                    varchar
);

-- One row per learner per course of a backtest: what really happened and when the
-- campaign would first have reached them with an alert message.
create table backtest_learners (
    backtest_id        varchar not null,
    learner_id         varchar not null,
    course_id          varchar not null,
    outcome            varchar not null check (outcome in ('withdrawn', 'completed', 'other')),
    left_at            timestamptz,
    left_day           integer,          -- course day of the withdrawal (0 = course start)
    first_alert_at     timestamptz,
    first_alert_key    varchar,
    lead_days          integer,          -- days between first alert and withdrawal
    reached_in_time    boolean,
    n_messages         integer not null,
    primary key (backtest_id, learner_id, course_id)
);

-- One row per message the campaign would have sent in a backtest.
create table backtest_messages (
    backtest_id   varchar not null,
    as_of         timestamptz not null,
    learner_id    varchar not null,
    course_id     varchar not null,
    message_key   varchar not null,
    trigger       varchar not null,
    stage         varchar
);

-- One row per backtest, replayed Monday and stage: learners in the stage.
create table backtest_weeks (
    backtest_id   varchar not null,
    as_of         timestamptz not null,
    course_week   integer,
    stage         varchar,
    learners      integer not null,
    messages      integer not null
);

-- One row per backtest and course week: how well the risk score ranked the learners who
-- later withdrew above the others (area under the ROC curve).
create table backtest_auc (
    backtest_id   varchar not null,
    course_week   integer not null,
    learners      integer not null,
    withdrawers   integer not null,
    auc           double
);

-- One row per fitted risk model: where it was trained and how well.
create table risk_models (
    model_id      varchar primary key,
    trained_on    varchar not null,     -- e.g. 'oulad 2013B'
    n_rows        integer not null,
    n_positive    integer not null,
    created_at    timestamptz not null default current_timestamp
);

-- One row per model and feature: a logistic regression over standardised behavioural
-- features, computed in SQL at evaluation time (relance/roi/sql/risk_features.sql).
create table risk_coefficients (
    model_id      varchar not null,
    feature       varchar not null,     -- '(intercept)' for the intercept
    coefficient   double not null,
    mean          double not null,
    sd            double not null,
    primary key (model_id, feature)
);
