-- What became of a run's sends, as an operator needs it (issue 17, findings 6 and 7).

-- A run's messages the provider got and never answered about (a hang, a dropped
-- connection, a crash mid-request found by this run's delivery): they may have been
-- accepted, so they wait for a person (`relance uncertain`). Null for runs before this column.
alter table campaign_runs add column n_uncertain integer;

-- send_attempts gains 'refused': a request the provider refused as a whole (a 429, a 5xx,
-- no connection), ended before the channel waits to try again; the retry is an attempt of
-- its own. Only an attempt left 'in_flight' makes its messages uncertain. DuckDB cannot
-- change a CHECK constraint in place, so the table is rebuilt with its rows.
create table send_attempts_v2 (
    attempt_id    varchar primary key,
    campaign_id   varchar not null,
    channel       varchar not null,
    started_at    timestamptz not null,
    finished_at   timestamptz,
    state         varchar not null
                  check (state in ('in_flight', 'done', 'refused', 'uncertain', 'abandoned')),
    n_messages    integer not null,
    pid           integer,
    note          varchar          -- a refused request: what the provider said
);
insert into send_attempts_v2 select * from send_attempts;
drop table send_attempts;
alter table send_attempts_v2 rename to send_attempts;
