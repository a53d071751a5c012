-- One learner's season across campaigns: every message of the ledger (when it went out,
-- ended, or was due), and every message a run proposed but a policy held back (caps,
-- the send window's week, completion...), with the reason; local times in their timezone.
with tz as (
    select coalesce((select name from pg_timezone_names()
                     where name = (select timezone from learners where learner_id = $learner)),
                    'Europe/Paris') as name
),
ledger as (
    select coalesce(s.sent_moment, e.moment, m.not_before) as moment, m.campaign_id,
           m.message_key, m.course_id, m.status, m.trigger, m.error as reason, m.subject
    from messages m
    left join sim_sends s using (message_id)
    left join sim_ends e using (message_id)
    where m.learner_id = $learner
),
held as (
    select r.as_of as moment, c.campaign_id, c.message_key, c.course_id, 'held back' as status,
           c.trigger, c.reason, null as subject
    from candidates c join campaign_runs r using (run_id)
    where c.learner_id = $learner and c.outcome = 'suppressed'
      and c.reason not like 'already_%' and c.reason <> 'holdout'
)
select timezone((select name from tz), moment) as local_moment, (select name from tz) as tz,
       campaign_id, message_key, course_id, status, trigger, reason, subject
from (select * from ledger union all by name select * from held)
order by moment, campaign_id, message_key
