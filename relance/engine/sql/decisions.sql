-- eval_decisions: one row per learner per course of the audience: stage, measures, the
-- message chosen (or the best candidate and why it was refused), or why none applied.
create or replace temp table eval_decisions as
with best as (
    -- per learner and course: the message chosen, else the first refused one. The choice
    -- is made on the candidates' row ids and the rows read back after: an arg_min carrying
    -- the whole candidate (a struct) cost 1.5x as much CPU at 1M learners (EXPLAIN ANALYZE:
    -- its HASH_GROUP_BY was the step's largest operator).
    select
        c.learner_id,
        c.course_id,
        {'message_key': c.message_key, 'trigger': c.trigger, 'not_before': c.not_before,
         'outcome': c.outcome, 'reason': c.reason} as pick
    from eval_candidates c
    where c.rowid in (
        select arg_min(rowid, (outcome not in ('planned', 'deferred'))::integer * 1000000
                              + rnk * 1000 + priority)
        from eval_candidates
        group by learner_id, course_id)
),
final as (
    select
        s.learner_id,
        s.course_id,
        s.stage,
        s.previous_stage,
        s.stage_entered_at,
        s.progress,
        s.inactive_days,
        s.enrolled_days,
        s.overdue,
        s.stalled_days,
        s.course_week,
        s.started     as is_started,
        s.completed   as is_completed,
        s.is_holdout,
        best.pick.message_key,
        best.pick.trigger,
        best.pick.not_before,
        coalesce(best.pick.outcome, 'no_message') as outcome,
        case
            when best.pick.outcome is not null then best.pick.reason
            when s.stage is null then 'no_stage'
            else 'no_trigger'
        end as reason
    from eval_state s
    left join best using (learner_id, course_id)
)
select * from final
