-- send_attempts gains 'connecting': a request recorded before its connection is made (TCP
-- connect, TLS handshake; an SMTP server's greeting and login), flipped to 'in_flight' by
-- the thread that sends it once the connection is up, just before its first byte is
-- written. A delivery that finds an attempt still 'connecting' (its process died while
-- connecting) ends it 'abandoned': nothing of it left, so its messages are simply due
-- again, never 'uncertain'. DuckDB cannot change a CHECK constraint in place, so the table
-- is rebuilt with its rows.
create table send_attempts_v3 (
    attempt_id    varchar primary key,
    campaign_id   varchar not null,
    channel       varchar not null,
    started_at    timestamptz not null,
    finished_at   timestamptz,
    state         varchar not null
                  check (state in ('connecting', 'in_flight', 'done', 'refused', 'uncertain',
                                   'abandoned')),
    n_messages    integer not null,
    pid           integer,
    note          varchar          -- a refused request: what the provider said
);
insert into send_attempts_v3 select * from send_attempts;
drop table send_attempts;
alter table send_attempts_v3 rename to send_attempts;
