-- Writes one evaluated run (the eval_* temp tables) into the warehouse. Run inside one
-- transaction with the run's bookkeeping: all of it lands, or none of it.
insert into decisions
select $run_id, $campaign_id, learner_id, course_id, $as_of, stage, previous_stage,
       stage_entered_at, progress, inactive_days, enrolled_days, overdue, stalled_days,
       course_week, is_started, is_completed, is_holdout, message_key, trigger, outcome, reason
from eval_decisions;

insert into candidates
select $run_id, $campaign_id, learner_id, course_id, message_key, trigger, idempotency_key,
       not_before, outcome, reason
from eval_candidates;

insert into messages (message_id, idempotency_key, run_id, campaign_id, message_key, trigger,
                      learner_id, course_id, channel, locale, to_email, status, not_before,
                      planned_at, variant)
select substr(sha256(c.idempotency_key), 1, 24), c.idempotency_key, $run_id, $campaign_id,
       c.message_key, c.trigger, c.learner_id, c.course_id, $channel, s.msg_locale, l.email,
       'planned', c.not_before, $as_of,
       -- test and learn: a stable draw per learner and message picks the variant
       /*@variant*/
from eval_candidates c
join eval_state s using (learner_id, course_id)
join learners l using (learner_id)
where c.outcome in ('planned', 'deferred')
-- in message_id order, the order delivery takes them in: a request's verdicts (one update
-- per request) then touch one or two row groups of the ledger, not all of them (at
-- 1,000,000 messages in the order planned: 0.84 s an update and the memory growing with
-- the ledger; in this order: 20 ms)
order by 1;

insert or replace into stage_state
select $campaign_id, learner_id, course_id, stage, stage_entered_at, first_seen_at,
       first_progress, $run_id
from eval_state;

insert into follow_ups
select $run_id, $campaign_id, learner_id, course_id, rule, reason, stage, $as_of
from eval_follow_ups;
