-- Load per learner per season week (learner-local weeks, week 1 starting $start_date):
-- among learners enrolled that week (not yet completed, withdrawn, or past the course's
-- end), messages received: mean, p95, max. Managers' digests are not a learner's load.
with sent as (
    select m.learner_id, m.campaign_id,
           (date_diff('day', $start_date,
                      date_trunc('week', timezone(coalesce(z.name, l.tz), s.sent_moment))::date) // 7) + 1 as week
    from sim_sends s join messages m using (message_id) join sim_limits l using (campaign_id)
    left join learners le using (learner_id)
    left join (select name from pg_timezone_names()) z on z.name = le.timezone
    where m.trigger <> 'digest'
),
weeks as (select unnest(range(1, $weeks + 1)) as week),
enrolled as (
    select distinct w.week, e.learner_id
    from weeks w join enrolments e
      on e.enrolled_at < $start + to_days(7 * w.week)
     and coalesce(least(e.completed_at, e.withdrawn_at), $start + to_days(7 * w.week))
         >= $start + to_days(7 * (w.week - 1))
    join courses c using (course_id)
    where c.ends_on is null or c.ends_on >= ($start + to_days(7 * (w.week - 1)))::date
),
per_learner as (
    select week, learner_id, count(*) as n from sent group by all
),
everyone as (
    select week, learner_id, coalesce(p.n, 0) as n
    from enrolled full join per_learner p using (week, learner_id)
)
select week, count(*) as learners, round(avg(n), 2) as mean,
       quantile_disc(n, 0.95) as p95, max(n) as max, sum(n) as messages
from everyone where week between 1 and $weeks group by week order by week
