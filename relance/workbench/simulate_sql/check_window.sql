-- Nothing outside a learner's window: each message this tick sent went out on one of its
-- campaign's send days, outside its quiet hours, in the learner's own timezone (the
-- engine's own macro, relance_allowed, from policies.sql). Managers' digests are timed in
-- their team's timezone: not a learner's window.
insert into sim_violations
select 'window', campaign_id, learner_id, message_id, sent_moment,
       'sent ' || strftime(timezone(learner_tz, sent_moment), '%a %d %b %H:%M') || ' in '
       || learner_tz || ', outside the send window (planned for '
       || strftime(timezone(learner_tz, not_before), '%a %d %b %H:%M') || ')'
from sim_tick
where trigger <> 'digest'
  and not relance_allowed(timezone(learner_tz, sent_moment), send_days, quiet_start, quiet_end)
