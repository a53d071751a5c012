-- What the measures read of the events, scanned from progress_events as of $as_of (any
-- date: the path of replays and backtests): per learner and course, the last activity and
-- the LMS's own progress figure (the best, and when it was first reached; ties: the
-- earliest). Two scans: all events for the last activity, and only those that carry a
-- progress figure. events_summary.sql reads the same from the loaders' summaries.
select e.learner_id, e.course_id, e.last_activity_at, r.reported_progress, r.best_progress_at
from (
    select p.learner_id, p.course_id, max(p.occurred_at) as last_activity_at
    from progress_events p
    where p.occurred_at <= $as_of
      and /*@course_filter*/
    group by all
) e
left join (
    select
        p.learner_id,
        p.course_id,
        max(p.progress)                                                    as reported_progress,
        arg_max(p.occurred_at, {'p': p.progress, 't': -epoch(p.occurred_at)}) as best_progress_at
    -- the events that carry a figure, a view (migration 0090) the shared warehouse answers
    -- from an index instead of scanning every event
    from progress_reports p
    where p.occurred_at <= $as_of
      and /*@course_filter*/
      -- `is not null`, written as a comparison: DuckDB's postgres extension sends that
      -- to PostgreSQL (not `is not null`), which then sends this scan its tenth of the rows
      and p.progress >= '-infinity'::double
    group by all
) r using (learner_id, course_id)
