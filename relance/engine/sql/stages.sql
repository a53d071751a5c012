-- eval_state: eval_measures plus the learner's stage (first match wins), control-group
-- membership, when they entered the stage (kept from the last run if unchanged), when and
-- at what progress the campaign first saw them, and their timezone's clock (eval_clock).
-- The one wide table of the evaluation: every later step reads a few of its columns. The
-- inputs of the measures (enrolment dates and status, the course's dates, the last
-- activity and progress moments) are not kept: no later step reads them, and writing them
-- for a million learners cost the step about 8 % of its CPU.
create or replace temp table eval_state as
with eval_measures as (
/*@measures*/
),
staged as (
    select
        m.*,
        /*@stage_case*/ as stage,
        -- Stable pseudo-random draw per learner and campaign: md5 of both, first 32 bits,
        -- scaled to 0..100. The same learner stays in (or out of) the control group.
        (('0x' || substr(md5($campaign_id || ':' || m.learner_id), 1, 8))::ubigint
            / 4294967296.0 * 100) < $control_group               as is_holdout
    from eval_measures m
),
final as (
    select
        s.*,
        c.* exclude (tz),
        p.stage as previous_stage,
        case
            when p.stage is not distinct from s.stage then p.entered_at
            -- first sight in a completion stage: they entered it when they completed
            when p.stage is null and list_contains($completion_stages, s.stage)
                then least(coalesce(s.completed_at, $as_of), $as_of)
            else $as_of
        end as stage_entered_at,
        coalesce(p.first_seen_at, $as_of)      as first_seen_at,
        coalesce(p.first_progress, s.progress) as first_progress
    from staged s
    join eval_clock c using (tz)
    left join stage_state p
        on p.campaign_id = $campaign_id
       and p.learner_id = s.learner_id
       and p.course_id = s.course_id
       /*@state_learners*/
)
select * exclude (enrolled_at, status, completed_at, starts_on, ends_on,
                  last_activity_at, last_progress_at)
from final
