-- Collisions: learners who got messages from two or more campaigns in one local week, per
-- pair of campaigns (learner-weeks), the pair's first example, and the total learner-weeks.
with lw as (
    select distinct m.learner_id, m.campaign_id,
           date_trunc('week', timezone(coalesce(z.name, l.tz), s.sent_moment)) as week
    from sim_sends s join messages m using (message_id) join sim_limits l using (campaign_id)
    left join learners le using (learner_id)
    left join (select name from pg_timezone_names()) z on z.name = le.timezone
    where m.trigger <> 'digest'
)
select a.campaign_id as first, b.campaign_id as second, count(*) as learner_weeks,
       min(a.learner_id || ' in the week of ' || strftime(a.week, '%Y-%m-%d')) as example,
       (select count(*) from (select learner_id, week from lw group by all
                              having count(*) >= 2)) as total
from lw a join lw b on a.learner_id = b.learner_id and a.week = b.week
                   and a.campaign_id < b.campaign_id
group by all order by learner_weeks desc, first, second
