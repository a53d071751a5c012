-- eval_decisions: one row per learner per course of the audience: stage, measures, the
-- message chosen (or the best candidate and why it was refused), or why none applied.
create or replace temp table eval_decisions as
with best as (
    -- per learner and course: the message chosen, else the first refused one
    select * from eval_candidates
    qualify row_number() over (partition by learner_id, course_id
                               order by outcome in ('planned', 'deferred') desc, rnk) = 1
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
        b.message_key,
        b.trigger,
        b.not_before,
        coalesce(b.outcome, 'no_message') as outcome,
        case
            when b.outcome is not null then b.reason
            when s.stage is null then 'no_stage'
            else 'no_trigger'
        end as reason
    from eval_state s
    left join best b using (learner_id, course_id)
)
select * from final
