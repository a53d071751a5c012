-- A backtest's results, from its scratch warehouse (attached under the name that the
-- scratch marker stands for) into the warehouse's backtest_* tables. Ground truth
-- (withdrawals, completions) is read from the scratch copy of the source model; what the
-- campaign would have sent, from the replay's ledger.

-- every message the replay planned and would have sent before the replay ended
create or replace temp table bt_sent as
select m.learner_id, m.course_id, m.message_key, m.trigger, m.not_before, r.as_of, d.stage
from /*@scratch*/.messages m
join /*@scratch*/.campaign_runs r using (run_id)
left join /*@scratch*/.decisions d using (run_id, learner_id, course_id)
where m.not_before <= $last_as_of + interval 7 day;

insert into backtest_messages
select $backtest_id, as_of, learner_id, course_id, message_key, trigger, stage from bt_sent;

insert into backtest_learners
with truth as (
    select e.learner_id, e.course_id,
           case when e.withdrawn_at is not null or e.status = 'withdrawn' then 'withdrawn'
                when e.status = 'completed' or e.completed_at is not null then 'completed'
                else 'other' end as outcome,
           e.withdrawn_at as left_at,
           -- the course day in the learner's own timezone (a withdrawal at midnight in
           -- London is the evening before in UTC)
           date_diff('day', coalesce(c.starts_on, e.enrolled_at::date),
                     timezone(coalesce(tz.name, 'UTC'), e.withdrawn_at)::date) as left_day
    from /*@scratch*/.enrolments e
    join /*@scratch*/.courses c using (course_id)
    join /*@scratch*/.learners l using (learner_id)
    left join (select name from pg_timezone_names()) tz on tz.name = l.timezone
    where list_contains($courses, e.course_id)
),
alerts as (
    select learner_id, course_id, min(not_before) as first_alert_at,
           arg_min(message_key, not_before) as first_alert_key
    from bt_sent
    where list_contains($alert_messages, message_key)
    group by all
),
counts as (
    select learner_id, course_id, count(*) as n_messages from bt_sent group by all
)
select $backtest_id, t.learner_id, t.course_id, t.outcome, t.left_at, t.left_day,
       a.first_alert_at, a.first_alert_key,
       floor(epoch(t.left_at - a.first_alert_at) / 86400)::integer as lead_days,
       coalesce(t.outcome = 'withdrawn'
                and a.first_alert_at <= t.left_at - to_days($lead_days), false) as reached_in_time,
       coalesce(n.n_messages, 0)
from truth t
left join alerts a using (learner_id, course_id)
left join counts n using (learner_id, course_id);

insert into backtest_weeks
select $backtest_id, r.as_of, min(d.course_week), d.stage, count(*),
       count(*) filter (where d.outcome in ('planned', 'deferred'))
from /*@scratch*/.decisions d
join /*@scratch*/.campaign_runs r using (run_id)
group by r.as_of, d.stage;

update backtest_runs set
    n_learners = (select count(*) from backtest_learners where backtest_id = $backtest_id),
    n_withdrawers = (select count(*) from backtest_learners where backtest_id = $backtest_id
                     and outcome = 'withdrawn' and left_day >= $early_leaver_days),
    n_reached = (select count(*) from backtest_learners where backtest_id = $backtest_id
                 and outcome = 'withdrawn' and left_day >= $early_leaver_days and reached_in_time),
    n_early_leavers = (select count(*) from backtest_learners where backtest_id = $backtest_id
                       and outcome = 'withdrawn' and left_day < $early_leaver_days),
    n_early_reached = (select count(*) from backtest_learners where backtest_id = $backtest_id
                       and outcome = 'withdrawn' and left_day < $early_leaver_days and reached_in_time),
    n_passers = (select count(*) from backtest_learners where backtest_id = $backtest_id
                 and outcome = 'completed'),
    n_flagged_passers = (select count(*) from backtest_learners where backtest_id = $backtest_id
                         and outcome = 'completed' and first_alert_at is not null),
    n_messages = (select count(*) from bt_sent),
    -- per learner-week in the audience (one decision per learner per replayed Monday)
    messages_per_learner_week = (select count(*) from bt_sent)
                                / nullif((select count(*) from /*@scratch*/.decisions), 0)
where backtest_id = $backtest_id;
