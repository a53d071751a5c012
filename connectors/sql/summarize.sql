-- The summaries the engine reads (migration 0055: progress_summaries, activity_completions,
-- progress_summary_state) brought up to date in the load's transaction, after every
-- entity is loaded: the events this load added are aggregated per learner and merged in
-- (latest event, best progress and when first reached, first completion of each activity:
-- merging the same events twice gives the same row, so a row loaded earlier at the same
-- moment does no harm), then the learners a void took events from (summary_stale, filled
-- by load_voids.sql) are recomputed from their remaining events. The state keeps the
-- table's row count only if it held the count before this load: summaries that were
-- already behind (rows written another way) stay marked behind, and the engine scans.
-- `/*@new_events*/` is the events to merge: this load's, or all of them for a rebuild
-- (connectors/summaries.py).
create temp table if not exists summary_stale (learner_id varchar, course_id varchar);

create or replace temp table summary_new as
select learner_id, course_id,
       max(occurred_at)                                                  as last_activity_at,
       max(progress)                                                     as reported_progress,
       arg_max(occurred_at, {'p': progress, 't': -epoch(occurred_at)})
           filter (where progress is not null)                           as best_progress_at
from progress_events
where /*@new_events*/
group by learner_id, course_id;

merge into progress_summaries s
using summary_new n
on s.learner_id = n.learner_id and s.course_id = n.course_id
when matched then update set
    last_activity_at  = greatest(s.last_activity_at, n.last_activity_at),
    -- the best figure's first moment: the newer figure's if better, the earlier if equal
    best_progress_at  = case
        when n.reported_progress is null then s.best_progress_at
        when s.reported_progress is null or n.reported_progress > s.reported_progress
            then n.best_progress_at
        when n.reported_progress = s.reported_progress
            then least(s.best_progress_at, n.best_progress_at)
        else s.best_progress_at
    end,
    reported_progress = greatest(s.reported_progress, n.reported_progress)
when not matched then insert
    (learner_id, course_id, last_activity_at, reported_progress, best_progress_at)
    values (n.learner_id, n.course_id, n.last_activity_at, n.reported_progress, n.best_progress_at);

merge into activity_completions s
using (
    select learner_id, course_id, activity_id, min(occurred_at) as done_at
    from progress_events
    where /*@new_events*/
      and activity_id is not null and is_completion(verb)
    group by learner_id, course_id, activity_id
) n
on s.learner_id = n.learner_id and s.course_id = n.course_id and s.activity_id = n.activity_id
when matched then update set done_at = least(s.done_at, n.done_at)
when not matched then insert (learner_id, course_id, activity_id, done_at)
    values (n.learner_id, n.course_id, n.activity_id, n.done_at);

-- what a void took back: those learners' rows again, from the events that remain
delete from progress_summaries s
where exists (select 1 from summary_stale x
              where x.learner_id = s.learner_id and x.course_id = s.course_id);

insert into progress_summaries
select p.learner_id, p.course_id, max(p.occurred_at), max(p.progress),
       arg_max(p.occurred_at, {'p': p.progress, 't': -epoch(p.occurred_at)})
           filter (where p.progress is not null)
from progress_events p
semi join summary_stale x on x.learner_id = p.learner_id and x.course_id = p.course_id
group by p.learner_id, p.course_id;

delete from activity_completions s
where exists (select 1 from summary_stale x
              where x.learner_id = s.learner_id and x.course_id = s.course_id);

insert into activity_completions
select p.learner_id, p.course_id, p.activity_id, min(p.occurred_at)
from progress_events p
semi join summary_stale x on x.learner_id = p.learner_id and x.course_id = p.course_id
where p.activity_id is not null and is_completion(p.verb)
group by p.learner_id, p.course_id, p.activity_id;

update progress_summary_state set
    n_events        = case when n_events = $events_before
                           then (select count(*) from progress_events) else n_events end,
    max_occurred_at = greatest(max_occurred_at, (select max(last_activity_at) from summary_new)),
    refreshed_at    = $now;

drop table summary_new;
drop table summary_stale
