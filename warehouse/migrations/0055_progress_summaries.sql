-- What the engine's measures read of progress_events, kept per learner as events arrive
-- (issue 19: an evaluation reads a row per learner, not the 50 events each has). The
-- loaders merge each load's new events into them and recompute what a void took back
-- (connectors/sql/summarize.sql), in the load's transaction; the engine reads them only
-- when progress_summary_state says they cover the whole table and no event is later
-- than the moment evaluated (relance/engine/summaries.py): a past date (backtests,
-- `--as-of` in the past) and a table written some other way are scanned in full.

-- One row per learner per course with an event: the latest event, the best progress
-- figure the LMS reported and when it was first reached (ties: the earliest).
create table progress_summaries (
    learner_id         varchar not null,
    course_id          varchar not null,
    last_activity_at   timestamptz not null,   -- max(occurred_at)
    reported_progress  double,                 -- max(progress); null: none reported
    best_progress_at   timestamptz             -- first moment of reported_progress
);

-- One row per activity a learner completed: its first completion (an event naming the
-- activity with a completion verb: is_completion in warehouse/macros.sql).
create table activity_completions (
    learner_id   varchar not null,
    course_id    varchar not null,
    activity_id  varchar not null,
    done_at      timestamptz not null          -- min(occurred_at)
);

-- One row: what the summaries cover. n_events is progress_events' row count when they
-- were last brought up to date; a count that differs means rows came or went another
-- way, and the engine scans the events instead. max_occurred_at: the latest event they
-- hold (an upper bound once a void removed it).
create table progress_summary_state (
    n_events         bigint not null,
    max_occurred_at  timestamptz,
    refreshed_at     timestamptz not null default current_timestamp
);

-- Built once from the events already loaded (the completion verbs spelled out: the
-- macros are made after the migrations).
insert into progress_summaries
select learner_id, course_id, max(occurred_at), max(progress),
       arg_max(occurred_at, {'p': progress, 't': -epoch(occurred_at)}) filter (where progress is not null)
from progress_events
group by learner_id, course_id;

insert into activity_completions
select learner_id, course_id, activity_id, min(occurred_at)
from progress_events
where activity_id is not null and verb in ('completed', 'passed', 'submitted')
group by learner_id, course_id, activity_id;

insert into progress_summary_state (n_events, max_occurred_at)
select count(*), max(occurred_at) from progress_events;
