-- Every planned message ends: at the season's end, none due before it is still waiting,
-- and none is left uncertain.
insert into sim_violations
select 'ends', campaign_id, learner_id, message_id, $now,
       case when status = 'uncertain' then 'left uncertain (the channel never answered)'
            else 'still ' || status || ', due ' || strftime(not_before, '%Y-%m-%d %H:%M UTC')
                 || ', never sent nor cancelled' end
from messages
where status = 'uncertain'
   or (status in ('planned', 'failed') and not_before < $now
       and (status = 'planned' or attempts < $max_attempts))
