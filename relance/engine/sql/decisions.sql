-- eval_decisions: one row per learner per course of the audience: stage, measures, the
-- message chosen (or the best candidate and why it was refused), or why none applied.
create or replace temp table eval_decisions as
with best as (
    -- per learner and course: the message chosen, else the first refused one
    select
        learner_id,
        course_id,
        arg_min({'message_key': message_key, 'trigger': trigger, 'not_before': not_before,
                 'outcome': outcome, 'reason': reason},
                (outcome not in ('planned', 'deferred'))::integer * 1000000 + rnk * 1000 + priority)
            as pick
    from eval_candidates
    group by all
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
