-- What the context of a delivery's messages needs, read once for every message it may
-- send (delivery_scope: the messages due when it starts; or one batch, for a preview), so
-- that each batch of 2,000 (context.sql) reads a slice of these tables instead of joining
-- the ledger, the decisions, the learners and the events again: each batch's query
-- scanned all the events three times and built each message's calendar row by row (a
-- 30,000-learner week: 0.5 to 0.8 s a batch, longer than rendering it). Tables keyed by
-- message are written in message_id order, the order batches are taken in, so a batch's
-- slice (message_id between its first and last) skips the others' row groups.
-- Each source table is also filtered on the keys of the scope (`in (select c from t)`
-- over the temp tables above it) and on its moments ($earliest: a week before the first
-- as_of, $latest: the last; messages.scope reads them from ctx_scope): the same rows as
-- the joins alone, but on the shared warehouse these filters are sent to PostgreSQL
-- (warehouse.shared.push_keys writes the key lists as literals) where a join's keys are
-- not, so a delivery reads its learners' rows instead of every table whole (1M learners:
-- 25-30 s a batch). Not `(select max(as_of) from ctx_scope)`: on the file such a bound
-- kept DuckDB from filtering the events by the join (0.05 s -> 5 s). Statements run one
-- at a time, each seeing the tables the ones before it made.
-- A statement marked `-- sections:` makes what only those recap sections (a message's
-- `include:`) show: a delivery's scope none of whose messages includes one of them skips
-- it, and context.sql reads an empty stand-in instead (context_skipped.sql).

-- the messages themselves
create or replace temp table ctx_due as
select m.message_id, m.message_key, m.variant, m.trigger, m.locale, m.to_email,
       m.campaign_id, m.learner_id, m.course_id, m.not_before, m.run_id
from messages m
where m.message_id in (select message_id from delivery_scope);

-- each message with its decision (as of the run that planned it) and its learner
create or replace temp table ctx_scope as
select
    m.message_id, m.message_key, m.variant, m.trigger, m.locale, m.to_email, m.campaign_id,
    m.learner_id, m.course_id, m.not_before,
    d.as_of, d.stage, d.progress, d.inactive_days, d.enrolled_days, d.overdue,
    d.stalled_days, d.course_week, d.is_started, d.is_completed,
    l.first_name, l.last_name, l.email, tz.name as timezone
from ctx_due m
join decisions d on d.run_id = m.run_id and d.learner_id = m.learner_id
                and d.course_id = m.course_id
join learners l on l.learner_id = m.learner_id
left join (select name from pg_timezone_names()) tz on tz.name = l.timezone
where d.run_id in (select run_id from ctx_due)
  and d.learner_id in (select learner_id from ctx_due)
  and l.learner_id in (select learner_id from ctx_due)
order by m.message_id;

-- the events of the scope's learners up to its last moment, read once
-- sections: last_week open_activities
create or replace temp table ctx_events as
select p.learner_id, p.course_id, p.activity_id, p.verb, p.occurred_at
from progress_events p
join (select distinct learner_id, course_id from ctx_scope) k
    on k.learner_id = p.learner_id and k.course_id = p.course_id
where p.learner_id in (select learner_id from ctx_scope)
  and p.occurred_at <= $latest;

-- per message: the activities its learner had completed as of its moment (done_ids), and
-- the learner's own last seven days
-- sections: last_week open_activities
create or replace temp table ctx_messages as
with done as (
    select s.message_id, list(distinct p.activity_id) as done_ids
    from ctx_scope s
    join ctx_events p on p.learner_id = s.learner_id and p.course_id = s.course_id
    where p.activity_id is not null
      and is_completion(p.verb)
      and p.occurred_at <= s.as_of
    group by all
),
own_last_week as (
    select s.message_id,
           count(distinct p.activity_id) filter (where is_completion(p.verb))
               as activities_done,
           count(distinct p.occurred_at::date) as active_days
    from ctx_scope s
    join ctx_events p on p.learner_id = s.learner_id and p.course_id = s.course_id
    where p.occurred_at > s.as_of - interval 7 day and p.occurred_at <= s.as_of
    group by all
)
select s.message_id, coalesce(d.done_ids, []) as done_ids,
       coalesce(o.activities_done, 0) as activities_done,
       coalesce(o.active_days, 0) as active_days
from ctx_scope s
left join done d using (message_id)
left join own_last_week o using (message_id)
order by s.message_id;

-- per course, course week and moment: the course calendar a message of that week shows.
-- `earlier`: activities opened by then, of an earlier week or already due (open_activities
-- are those the learner has not done: context.sql leaves out its done_ids); `this_week`:
-- the week's activities, or due in the seven days ahead.
-- sections: open_activities this_week
create or replace temp table ctx_weeks as
with weeks as (
    select distinct course_id, course_week, as_of from ctx_scope
),
calendar as (
    select w.course_id, w.course_week, w.as_of,
           a.activity_id, a.title, a.kind, a.week, a.opens_at, a.due_at, a.url, a.weight
    from weeks w
    join activities a on a.course_id = w.course_id
    where a.course_id in (select course_id from ctx_scope)
),
earlier as (
    select course_id, course_week, as_of,
           list({'id': activity_id, 'title': title, 'kind': kind, 'week': week,
                 'due_at': due_at, 'url': url} order by due_at nulls last, week, title) as items
    from calendar
    where coalesce(opens_at <= as_of, true)
      and coalesce(week < course_week, due_at < as_of, false)
    group by all
),
this_week as (
    select course_id, course_week, as_of,
           list({'id': activity_id, 'title': title, 'kind': kind, 'week': week,
                 'due_at': due_at, 'url': url} order by due_at nulls last, weight, title) as items
    from calendar
    where week = course_week
       or (due_at >= as_of and due_at < as_of + interval 7 day)
    group by all
)
select w.course_id, w.course_week, w.as_of, e.items as earlier, t.items as this_week
from weeks w
left join earlier e on e.course_id = w.course_id and e.as_of = w.as_of
                   and e.course_week is not distinct from w.course_week
left join this_week t on t.course_id = w.course_id and t.as_of = w.as_of
                     and t.course_week is not distinct from w.course_week;

-- the cohort's last seven days, once per course and moment
-- sections: last_week
create or replace temp table ctx_cohort_last_week as
select c.course_id, c.as_of,
       count(distinct p.learner_id) as cohort_active,
       count(*) filter (where is_completion(p.verb)) as cohort_completed_activities
from (select distinct course_id, as_of from ctx_scope) c
join progress_events p on p.course_id = c.course_id
where p.occurred_at > c.as_of - interval 7 day and p.occurred_at <= c.as_of
  and p.course_id in (select course_id from ctx_scope)
  and p.occurred_at > $earliest and p.occurred_at <= $latest
group by all;

-- the course's most notable contributions of the week, computed once per course and
-- moment (not once per message: a large cohort posts thousands a week); four, so that
-- three remain once the learner's own is left out
-- sections: colleagues_contributions
create or replace temp table ctx_week_contributions as
select c.course_id, c.as_of, k.contribution_id, k.learner_id, k.title, k.kind, k.url,
       k.n_replies, k.posted_at, k.is_notable
from (select distinct course_id, as_of from ctx_scope) c
join contributions k on k.course_id = c.course_id
where k.posted_at > c.as_of - interval 7 day and k.posted_at <= c.as_of
  and k.course_id in (select course_id from ctx_scope)
  and k.posted_at > $earliest and k.posted_at <= $latest;

-- sections: colleagues_contributions
create or replace temp table ctx_course_contributions as
select k.course_id, k.as_of, k.learner_id,
       {'author': trim(l.first_name || ' ' || coalesce(left(l.last_name, 1) || '.', '')),
        'title': k.title, 'kind': k.kind, 'url': k.url,
        'n_replies': k.n_replies, 'posted_at': k.posted_at} as item,
       row_number() over (partition by k.course_id, k.as_of
                          order by k.is_notable desc, k.n_replies desc, k.posted_at desc,
                                   k.contribution_id) as rank
from ctx_week_contributions k
join learners l on l.learner_id = k.learner_id
where l.learner_id in (select learner_id from ctx_week_contributions)
qualify rank <= 4;
