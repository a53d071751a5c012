-- One row per digest of delivery_batch: its manager, the week, and the team it was planned
-- with (digest_members), each learner with their stage, progress and inactivity as of the
-- run that planned it (its decision row) and their last activity up to then. Only the
-- digest's own members: a manager never sees another manager's team.
-- Each table is read for the batch's keys only (`in (select c from t)`; the members'
-- learners and courses by the batch's message ids): on the shared warehouse these lists
-- are sent to PostgreSQL (warehouse/shared.py, push_keys and push_derived_keys), not the
-- whole ledger, members, learners and events copied out for each batch.
with batch as (
    select m.message_id, m.learner_id, m.locale, m.to_email, m.not_before, m.run_id,
           m.idempotency_key, r.as_of
    from messages m
    join delivery_batch b using (message_id)
    join campaign_runs r using (run_id)
    where m.trigger = 'digest'
      and r.run_id in (select run_id from messages
                       where message_id in (select message_id from delivery_batch))
      and m.message_id in (select message_id from delivery_batch)
),
members as (
    select dm.message_id, dm.learner_id, dm.course_id, dm.group_name, dm.listed, b.as_of,
           b.run_id
    from digest_members dm
    join batch b using (message_id)
    where dm.message_id in (select message_id from delivery_batch)
),
-- each listed member's row, ranked within their group in the digest's order: a digest
-- shows the first $per_group of each group and counts the others (a manager of thousands
-- reads a list, not a directory; and a digest that grew with the team took over a second
-- to render at 100,000 learners, past the render budget)
ranked as (
    select m.message_id, m.learner_id, m.course_id, m.group_name, m.as_of,
           l.first_name, l.last_name, c.title as course, d.stage, d.progress, d.inactive_days,
           row_number() over (partition by m.message_id, m.group_name
                              order by d.progress desc nulls last, l.last_name, l.first_name,
                                       m.learner_id) as rank
    from members m
    join learners l using (learner_id)
    join courses c using (course_id)
    left join decisions d on d.run_id = m.run_id and d.learner_id = m.learner_id
                         and d.course_id = m.course_id
                         and d.learner_id in (select learner_id from digest_members
                                              where message_id in (select message_id from delivery_batch))
                         and d.run_id in (select run_id from messages
                                          where message_id in (select message_id from delivery_batch))
    where m.listed
      and l.learner_id in (select learner_id from digest_members
                           where message_id in (select message_id from delivery_batch))
),
shown as (
    select * from ranked where rank <= $per_group
),
last_activity as (
    select p.learner_id, p.course_id, max(p.occurred_at) as last_activity_at
    from progress_events p
    join (select distinct learner_id, course_id, as_of from shown) m
        on m.learner_id = p.learner_id and m.course_id = p.course_id
       and p.occurred_at <= m.as_of
    where p.learner_id in (select learner_id from digest_members
                           where message_id in (select message_id from delivery_batch))
    group by all
),
listed as (
    select s.message_id,
           list({'group_name': s.group_name, 'first_name': s.first_name,
                 'last_name': s.last_name,
                 'name': trim(coalesce(s.first_name, '') || ' ' || coalesce(s.last_name, '')),
                 'course': s.course, 'stage': s.stage, 'progress': s.progress,
                 'inactive_days': s.inactive_days, 'last_activity_at': a.last_activity_at}
                order by s.group_name, s.rank) as members
    from shown s
    left join last_activity a using (learner_id, course_id)
    group by all
),
counted as (
    select message_id,
           count(*) filter (where listed)     as n_listed,
           count(*) filter (where not listed) as n_withheld
    from members
    group by all
),
group_sizes as (
    select message_id, list({'group_name': group_name, 'n': n}) as group_sizes
    from (select message_id, group_name, count(*) as n from members where listed group by all)
    group by all
)
select b.message_id, b.learner_id, b.locale, b.to_email, b.not_before, b.as_of,
       split_part(b.idempotency_key, '/week:', 2) as week,
       coalesce(tz.tz, $timezone) as timezone,
       coalesce(x.members, []) as members,
       coalesce(k.n_listed, 0) as n_listed,
       coalesce(k.n_withheld, 0) as n_withheld,
       coalesce(g.group_sizes, []) as group_sizes
from batch b
left join listed x using (message_id)
left join counted k using (message_id)
left join group_sizes g using (message_id)
-- the manager's timezone: the one most of the team has (as when it was planned, plan.sql)
left join (
    select dm.message_id, coalesce(tzn.name, $timezone) as tz
    from digest_members dm
    join batch using (message_id)
    join learners l on l.learner_id = dm.learner_id
                   and l.learner_id in (select learner_id from digest_members
                                        where message_id in (select message_id from delivery_batch))
    left join (select name from pg_timezone_names()) tzn on tzn.name = l.timezone
    where dm.message_id in (select message_id from delivery_batch)
    group by dm.message_id, coalesce(tzn.name, $timezone)
    qualify row_number() over (partition by dm.message_id
                               order by count(*) desc, (tz = $timezone) desc, tz) = 1
) tz using (message_id)
order by b.message_id
