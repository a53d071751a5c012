-- One row per progress event or contribution its source took back (an xAPI statement
-- voiding another: verb `voided`, object a StatementRef). A void is final and kept
-- whether or not its target is in the warehouse: the target is removed from
-- progress_events and contributions when loaded before, with the void, or by a later
-- load, and what was removed is kept here (`removed`), so an analyst sees what no
-- campaign counts any more and why.
create table voids (
    source           varchar not null,
    voided_id        varchar not null,   -- the event_id / contribution_id taken back
    voiding_id       varchar not null,   -- what took it back (the voiding statement's id)
    voided_at        timestamptz,        -- when the source says it was voided
    load_id          varchar not null,   -- the load that read the void
    applied_at       timestamptz,        -- when its target was removed; null while never loaded
    applied_load_id  varchar,
    removed          json,               -- {"progress_events": [rows], "contributions": [rows]}
    loaded_at        timestamptz not null default current_timestamp,
    primary key (source, voided_id)
);
