-- What this tick did to the ledger, stamped with the simulated moment $now.
insert into sim_sends
select message_id, $now from messages
where status = 'sent' and message_id not in (select message_id from sim_sends);

insert into sim_ends
select message_id, status, $now from messages
where status in ('cancelled', 'failed', 'uncertain')
  and message_id not in (select message_id from sim_ends);
