-- sim_tick: the messages this tick sent, with the learner's timezone (the campaign's when
-- the learner's is missing or unknown, as the engine does) and their campaign's limits.
create or replace temp table sim_tick as
select m.*, s.sent_moment, coalesce(z.name, l.tz) as learner_tz, l.send_days, l.quiet_start,
       l.quiet_end, l.per_week, l.per_campaign
from sim_sends s
join messages m using (message_id)
join sim_limits l using (campaign_id)
left join learners le using (learner_id)
left join (select name from pg_timezone_names()) z on z.name = le.timezone
where s.sent_moment = $now
