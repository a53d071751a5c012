-- Every planned message ends: one cancelled at this tick says why.
insert into sim_violations
select 'ends', m.campaign_id, m.learner_id, m.message_id, $now,
       'cancelled without a reason'
from sim_ends e join messages m using (message_id)
where e.moment = $now and e.status = 'cancelled' and coalesce(trim(m.error), '') = ''
