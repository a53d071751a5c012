-- eval_plan_diff: one row per learner per course whose stage or message differs between
-- `diff_before` (the decisions of a recorded run, or of the file's last committed version)
-- and `eval_decisions` (the plan now). A message counts when it goes (now or later).
create or replace temp table eval_plan_diff as
with before as (
    select learner_id, course_id, stage,
           case when outcome in ('planned', 'deferred') then message_key end as message,
           case when outcome not in ('planned', 'deferred') then reason end   as reason
    from diff_before
),
now as (
    select learner_id, course_id, stage,
           case when outcome in ('planned', 'deferred') then message_key end as message,
           case when outcome not in ('planned', 'deferred') then reason end   as reason
    from eval_decisions
)
select
    learner_id,
    course_id,
    b.stage    as stage_before,
    n.stage    as stage_now,
    b.message  as message_before,
    n.message  as message_now,
    b.reason   as reason_before,
    n.reason   as reason_now,
    case
        when b.learner_id is null then 'joined the audience'
        when n.learner_id is null then 'left the audience'
        when b.message is distinct from n.message then 'message changed'
        else 'stage changed'
    end as change
from before b
full outer join now n using (learner_id, course_id)
where b.learner_id is null or n.learner_id is null
   or b.stage is distinct from n.stage or b.message is distinct from n.message
