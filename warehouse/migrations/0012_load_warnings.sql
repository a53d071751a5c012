-- What a load skipped without failing (a Canvas instance without course analytics ...):
-- said in the sync's report and kept with the load, one message per line.
alter table loads add column warnings varchar[];
