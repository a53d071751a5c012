-- The per-person caps: counting every message sent to the learner in the local week of
-- this tick, in the order they went out, none this tick sent is beyond its campaign's
-- per_learner_per_week (all campaigns together) or per_campaign_per_week (its own).
insert into sim_violations
with week_sent as (
    select m.message_id, m.campaign_id, m.learner_id, s.sent_moment, t.learner_tz
    from (select distinct learner_id, learner_tz from sim_tick where trigger <> 'digest') t
    join messages m using (learner_id)
    join sim_sends s using (message_id)
    where m.trigger <> 'digest'
      and s.sent_moment > $now - interval 8 day
      and date_trunc('week', timezone(t.learner_tz, s.sent_moment))
          = date_trunc('week', timezone(t.learner_tz, $now))
),
counted as (
    select *,
           row_number() over (partition by learner_id order by sent_moment, message_id) as nth_all,
           row_number() over (partition by learner_id, campaign_id
                              order by sent_moment, message_id) as nth_campaign
    from week_sent
)
select 'cap', c.campaign_id, c.learner_id, c.message_id, c.sent_moment,
       case when c.nth_all > l.per_week
            then 'message ' || c.nth_all || ' this week across campaigns; ' || c.campaign_id
                 || ' allows ' || l.per_week || ' (limits.per_learner_per_week)'
            else 'message ' || c.nth_campaign || ' of ' || c.campaign_id || ' this week; it allows '
                 || l.per_campaign || ' (limits.per_campaign_per_week)' end
from counted c join sim_limits l using (campaign_id)
where c.sent_moment = $now and (c.nth_all > l.per_week or c.nth_campaign > l.per_campaign)
