-- "Was this helpful?" (issue 18, item 6): a message may carry two signed one-click links,
-- yes and no; `relance serve` records the answer the learner confirms.

-- One row per message answered: the learner's last answer (a second answer replaces the
-- first: a misclick can be put right; `n_answers` counts them), and the comment they may
-- add (capped by the receiver). Written by the receiver (relance/feedback/helpful.py);
-- read by the kpi_helpful view, which relays comments only above a minimum count.
create table helpful_answers (
    message_id         varchar primary key,
    campaign_id        varchar not null,
    message_key        varchar not null,
    learner_id         varchar not null,
    answer             varchar not null check (answer in ('yes', 'no')),
    comment            varchar,
    first_answered_at  timestamptz not null,   -- logical time (relance.clock)
    answered_at        timestamptz not null,   -- the last answer's
    n_answers          integer not null default 1
);
