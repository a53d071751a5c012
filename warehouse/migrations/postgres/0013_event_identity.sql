-- PostgreSQL's form of ../0013_event_identity.sql (DuckDB's postgres extension runs no
-- ALTER COLUMN ... DROP NOT NULL on an attached table).
alter table progress_events alter column event_id drop not null;
