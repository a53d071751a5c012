-- Messages sent per season week (learner-local, as load.sql) and campaign.
select (date_diff('day', $start_date,
                  date_trunc('week', timezone(coalesce(z.name, l.tz), s.sent_moment))::date) // 7) + 1 as week,
       m.campaign_id, count(*) as n
from sim_sends s join messages m using (message_id) join sim_limits l using (campaign_id)
left join learners le using (learner_id)
left join (select name from pg_timezone_names()) z on z.name = le.timezone
where m.trigger <> 'digest'
group by all order by all
