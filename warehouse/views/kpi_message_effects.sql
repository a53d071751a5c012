-- kpi_message_effects: one row per campaign, message and stage ('(all)': the message's
-- stages together): did the learners it was proposed to come back within 7 days, against
-- the control group's learners it was proposed to in the same stage (held back by the
-- control group's draw)? Re-engagement alone (kpi_messages) has no comparison: a recap
-- sent to active learners is followed by activity whatever it says.
--
-- Each learner counts once per message, at its first proposal (the first run that made
-- them a candidate, intention to treat: sent or not), in the stage they were in then;
-- re-engaged: any activity on the course in the 7 days after the moment the message could
-- first go out (the candidate's `not_before`: the send window may put it hours or days
-- after the run; a control learner's too, the one it would have had; the run's moment when
-- a candidate has none, refused for another reason), counted once those 7 days are over at
-- the KPI clock (n_* count only those).
-- `all_dropped_out` / `all_completed`: every learner it was proposed to had already
-- dropped out (silent 21+ days, or withdrawn) / completed when it was: comparing dropout or
-- completion then measures the stage that triggered the message, not the message (the
-- report leaves such rows of kpi_control out, with this reason).
create or replace view kpi_message_effects as
with clock as (select any_value(as_of) as as_of from kpi_base),
first_proposal as (
    select c.campaign_id, c.message_key, c.learner_id, c.course_id,
           arg_min(c.run_id, r.as_of) as run_id, min(r.as_of) as run_at,
           arg_min(coalesce(c.not_before, r.as_of), r.as_of) as proposed_at
    from candidates c
    join campaign_runs r using (run_id, campaign_id)
    group by all
),
proposed as (
    select f.*, d.stage, d.is_holdout,
           coalesce(d.inactive_days >= 21, false) or coalesce(b.withdrawn_at <= f.run_at, false)
               as dropped_then,
           coalesce(d.is_completed, false) as completed_then,
           f.proposed_at + interval 7 day <= clock.as_of as observed
    from first_proposal f
    join decisions d using (run_id, learner_id, course_id)
    left join kpi_base b using (learner_id, course_id)
    cross join clock
),
came_back as (
    select distinct p.campaign_id, p.message_key, p.learner_id, p.course_id
    from proposed p
    join progress_events e
      on e.learner_id = p.learner_id and e.course_id = p.course_id
     and e.occurred_at > p.proposed_at and e.occurred_at <= p.proposed_at + interval 7 day
    where p.observed
),
flags as (
    select campaign_id, message_key, bool_and(dropped_then) as all_dropped_out,
           bool_and(completed_then) as all_completed
    from proposed
    group by all
),
counts as (
    select p.campaign_id, p.message_key,
           case when grouping(p.stage) = 1 then '(all)' else coalesce(p.stage, '(none)') end as stage,
           count(*) filter (where p.observed and not p.is_holdout)                      as n_treated,
           count(b.learner_id) filter (where p.observed and not p.is_holdout)           as k_treated,
           count(*) filter (where p.observed and p.is_holdout)                          as n_control,
           count(b.learner_id) filter (where p.observed and p.is_holdout)               as k_control,
           count(*) filter (where not p.observed)                                       as not_yet_observed
    from proposed p
    left join came_back b using (campaign_id, message_key, learner_id, course_id)
    group by grouping sets ((p.campaign_id, p.message_key, p.stage), (p.campaign_id, p.message_key))
)
select c.campaign_id, c.message_key, c.stage,
       c.n_treated, c.k_treated, c.k_treated / nullif(c.n_treated, 0) as rate_treated,
       c.n_control, c.k_control, c.k_control / nullif(c.n_control, 0) as rate_control,
       c.k_treated / nullif(c.n_treated, 0) - c.k_control / nullif(c.n_control, 0) as difference,
       newcombe_low(c.k_treated, nullif(c.n_treated, 0), c.k_control, nullif(c.n_control, 0)) as ci_low,
       newcombe_high(c.k_treated, nullif(c.n_treated, 0), c.k_control, nullif(c.n_control, 0)) as ci_high,
       case
           when too_small(c.k_treated, c.n_treated, c.k_control, c.n_control) then 'too_small'
           when newcombe_low(c.k_treated, c.n_treated, c.k_control, c.n_control) > 0 then 'higher_with_campaign'
           when newcombe_high(c.k_treated, c.n_treated, c.k_control, c.n_control) < 0 then 'lower_with_campaign'
           else 'no_clear_difference'
       end as verdict,
       c.not_yet_observed, f.all_dropped_out, f.all_completed
from counts c
join flags f using (campaign_id, message_key)
