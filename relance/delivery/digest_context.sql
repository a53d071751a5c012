-- One row per digest of delivery_batch: its manager, the week, and the team it was planned
-- with (digest_members), each learner with their stage, progress and inactivity as of the
-- run that planned it (its decision row) and their last activity up to then. Only the
-- digest's own members: a manager never sees another manager's team.
with batch as (
    select m.message_id, m.learner_id, m.locale, m.to_email, m.not_before, m.run_id,
           m.idempotency_key, r.as_of
    from messages m
    join delivery_batch b using (message_id)
    join campaign_runs r using (run_id)
    where m.trigger = 'digest'
),
members as (
    select dm.message_id, dm.learner_id, dm.course_id, dm.group_name, dm.listed, b.as_of,
           b.run_id
    from digest_members dm
    join batch b using (message_id)
),
last_activity as (
    select p.learner_id, p.course_id, max(p.occurred_at) as last_activity_at
    from progress_events p
    join (select distinct learner_id, course_id, as_of from members where listed) m
        on m.learner_id = p.learner_id and m.course_id = p.course_id
       and p.occurred_at <= m.as_of
    group by all
),
listed as (
    select m.message_id,
           list({'group_name': m.group_name, 'first_name': l.first_name,
                 'last_name': l.last_name,
                 'name': trim(coalesce(l.first_name, '') || ' ' || coalesce(l.last_name, '')),
                 'course': c.title, 'stage': d.stage, 'progress': d.progress,
                 'inactive_days': d.inactive_days, 'last_activity_at': a.last_activity_at}
                order by d.progress desc nulls last, l.last_name, l.first_name, m.learner_id)
               filter (where m.listed) as members,
           count(*) filter (where m.listed)     as n_listed,
           count(*) filter (where not m.listed) as n_withheld
    from members m
    join learners l using (learner_id)
    join courses c using (course_id)
    left join decisions d on d.run_id = m.run_id and d.learner_id = m.learner_id
                         and d.course_id = m.course_id
    left join last_activity a using (learner_id, course_id)
    group by all
)
select b.message_id, b.learner_id, b.locale, b.to_email, b.not_before, b.as_of,
       split_part(b.idempotency_key, '/week:', 2) as week,
       coalesce(tz.tz, $timezone) as timezone,
       coalesce(x.members, []) as members,
       coalesce(x.n_listed, 0) as n_listed,
       coalesce(x.n_withheld, 0) as n_withheld
from batch b
left join listed x using (message_id)
-- the manager's timezone: the one most of the team has (as when it was planned, plan.sql)
left join (
    select dm.message_id, coalesce(tzn.name, $timezone) as tz
    from digest_members dm
    join batch using (message_id)
    join learners l on l.learner_id = dm.learner_id
    left join (select name from pg_timezone_names()) tzn on tzn.name = l.timezone
    group by dm.message_id, coalesce(tzn.name, $timezone)
    qualify row_number() over (partition by dm.message_id
                               order by count(*) desc, (tz = $timezone) desc, tz) = 1
) tz using (message_id)
order by b.message_id
