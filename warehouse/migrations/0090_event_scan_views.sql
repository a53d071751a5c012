-- The two narrow reads of progress_events the engine makes when it scans the events (a
-- replay of a past date, a backtest; engine/sql/events_scan.sql and done.sql), named so
-- that the shared warehouse can answer them from an index rather than a scan of every
-- event. Here (DuckDB) they are plain views, inlined into the query that reads them: the
-- same plan as reading progress_events with the same conditions. On the shared warehouse
-- (migrations/postgres/0090_event_scan_views.sql) they are PostgreSQL views over partial
-- indexes: a tenth of the events each, read in one query, not every page of the table.

-- progress_reports: one row per event that carries the LMS's own progress figure.
create or replace view progress_reports as
select learner_id, course_id, occurred_at, progress
from progress_events
where progress is not null;

-- completion_events: one row per event that completes an activity (the verbs of the
-- is_completion macro, warehouse/macros.sql: change both together).
create or replace view completion_events as
select learner_id, course_id, activity_id, verb, occurred_at
from progress_events
where activity_id is not null and verb in ('completed', 'passed', 'submitted');
