-- Writes the evaluation's digests into the ledger and their teams into digest_members, in
-- the run's transaction (engine.persist). learner_id 'manager:<address>' keeps the ledger's
-- columns as they are: no learner has that id, so learner policies and caps never count it.
insert into messages (message_id, idempotency_key, run_id, campaign_id, message_key, trigger,
                      learner_id, course_id, channel, locale, to_email, status, not_before,
                      planned_at)
select substr(sha256(idempotency_key), 1, 24), idempotency_key, $run_id, $campaign_id,
       'digest', 'digest', 'manager:' || manager_email, '', $channel, locale, manager_email,
       'planned', not_before, $as_of
from eval_digests
where outcome in ('planned', 'deferred');

insert into digest_members
select substr(sha256(d.idempotency_key), 1, 24), m.learner_id, m.course_id, m.group_name,
       not m.is_holdout
from eval_digest_members m
join eval_digests d using (manager_email)
where d.outcome in ('planned', 'deferred');
