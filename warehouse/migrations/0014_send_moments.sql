-- Logical time and wall time apart. `messages.sent_at` is the send moment on relance's
-- clock (the delivery's now: the wall clock in production, the chosen moment under
-- `--as-of` or in a simulated season), the moment the message's Date: header carries;
-- `sent_wall_at` is when the channel really handed it over (the provider's acceptance),
-- for audits. `planned_at` and `follow_ups.created_at` hold the run's as_of.
alter table messages add column sent_wall_at timestamptz;
