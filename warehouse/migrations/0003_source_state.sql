-- Where each source's incremental sync stands, one row per source and stream (a stream is
-- whatever the source pages through on its own: 'statements' of an LRS, one course's
-- enrolments of a Moodle site, one exported file). The cursor is opaque to the warehouse
-- (a timestamp, a page token, a file fingerprint): only its connector reads it.
--
-- A cursor moves in the same transaction as the rows it covers, so an interrupted sync
-- resumes from the last committed cursor: rows fetched again are deduplicated by the
-- loaders' keys, and no row is skipped.
create table source_cursors (
    source      varchar not null,
    stream      varchar not null,
    cursor      varchar not null,
    load_id     varchar not null,
    updated_at  timestamptz not null,
    primary key (source, stream)
);
