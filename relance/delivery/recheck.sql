-- The verdict, now, on each message about to go out (recheck_messages), from the engine's
-- evaluation of their learners as of $now (eval_state, eval_candidates; the messages
-- themselves left out of the ledger it reads): the same definitions that planned them.
--   * still proposed and due: it goes (no row here);
--   * still proposed, but not now (quiet hours, a send day, the weekly moment): it waits
--     until the moment the policies give (`wait_until`);
--   * refused now (completed, unsubscribed, the course ended, a weekly cap reached, a
--     weekly message whose week the window would push it out of): cancelled, that reason;
--   * no longer proposed: cancelled, and why: the learner left the audience (withdrew,
--     no longer matches audience.where), left the stages the message is for, or its
--     occasion no longer holds (a milestone passed by a higher one, an activity ...).
create or replace temp table recheck_verdicts as
select
    m.message_id,
    case
        when c.idempotency_key is null then
            case
                when s.learner_id is null then 'left_audience'
                when (m.trigger like 'enter:%' or m.trigger in ('while_in', 'every'))
                     and not list_contains($targets, m.message_key || ':' || coalesce(s.stage, ''))
                    then 'stage_changed'
                else 'no_longer_due'
            end
        when c.outcome = 'suppressed' then c.reason
    end as cancel_reason,
    case when c.outcome = 'deferred' then c.not_before end as wait_until,
    case when c.outcome = 'deferred' then c.reason end as wait_reason
from messages m
join recheck_messages r using (message_id)
left join eval_candidates c on c.idempotency_key = m.idempotency_key
left join eval_state s on s.learner_id = m.learner_id and s.course_id = m.course_id
-- (the join's keys again, as a list the shared warehouse sends to PostgreSQL: the ledger's
-- rows of these messages are read, not the whole ledger; warehouse/shared.py, push_keys)
where m.message_id in (select message_id from recheck_messages);
