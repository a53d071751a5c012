-- PostgreSQL's form of ../0090_event_scan_views.sql: the same two views, each over a
-- partial index that holds every column it gives, so that PostgreSQL reads a replay's
-- progress figures and completions by an index-only scan of a tenth of the events instead
-- of filtering every row of progress_events (three full scans per replay before: about
-- 0.5 s of PostgreSQL's CPU each at 10M events). DuckDB's postgres extension reads a view
-- in one query (a table, in ranges of pages, which PostgreSQL cannot answer from an index),
-- and still sends it the replay's own conditions (occurred_at, course_id).
-- An index-only scan needs the table's visibility map, which autovacuum keeps after loads.
-- PostgreSQL keeps a view bound to the columns it reads: a later migration that changes the
-- type of one of them drops these views first and makes them again.
create index progress_events_reports on progress_events (occurred_at)
    include (course_id, learner_id, progress) where progress is not null;
create index progress_events_completions on progress_events (occurred_at)
    include (course_id, learner_id, activity_id, verb)
    where activity_id is not null and verb in ('completed', 'passed', 'submitted');

create view progress_reports as
select learner_id, course_id, occurred_at, progress
from progress_events
where progress is not null;

create view completion_events as
select learner_id, course_id, activity_id, verb, occurred_at
from progress_events
where activity_id is not null and verb in ('completed', 'passed', 'submitted');
