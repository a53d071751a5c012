-- The simulator's own bookkeeping, temp tables of its connection (the scratch warehouse's
-- ledger holds wall-clock sent_at; these hold the simulated moments).
-- sim_sends: one row per message the simulation saw sent, at the tick it went out.
create or replace temp table sim_sends (message_id varchar primary key, sent_moment timestamptz not null);
-- sim_ends: one row per message that ended otherwise (cancelled, failed, uncertain), first seen.
create or replace temp table sim_ends (message_id varchar primary key, status varchar not null,
                                       moment timestamptz not null);
-- sim_violations: one row per broken invariant, with the message and moment that show it.
create or replace temp table sim_violations (invariant varchar not null, campaign_id varchar,
    learner_id varchar, message_id varchar, moment timestamptz not null, why varchar not null);
