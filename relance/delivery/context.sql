-- open_activities are earlier activities the learner has not done (catching up);
-- this_week is the course calendar of the current week.
-- One row per message of delivery_batch: everything its templates may use, as of the run
-- that planned it (its decision row), so a message deferred to later still speaks of the
-- week it was planned for.
with batch as (
    select
        m.message_id, m.message_key, m.variant, m.trigger, m.locale, m.to_email, m.campaign_id,
        m.learner_id, m.course_id, m.not_before,
        d.as_of, d.stage, d.progress, d.inactive_days, d.enrolled_days, d.overdue,
        d.stalled_days, d.course_week, d.is_started, d.is_completed
    from messages m
    join delivery_batch b using (message_id)
    join decisions d on d.run_id = m.run_id and d.learner_id = m.learner_id
                    and d.course_id = m.course_id
),
done as (
    select distinct p.learner_id, p.course_id, p.activity_id
    from progress_events p
    join batch b on b.learner_id = p.learner_id and b.course_id = p.course_id
    where p.activity_id is not null
      and is_completion(p.verb)
      and p.occurred_at <= b.as_of
),
calendar as (
    select
        b.message_id,
        a.activity_id, a.title, a.kind, a.week, a.opens_at, a.due_at, a.url, a.weight,
        d.activity_id is not null as is_done,
        b.as_of, b.course_week
    from batch b
    join activities a on a.course_id = b.course_id
    left join done d on d.learner_id = b.learner_id and d.course_id = b.course_id
                    and d.activity_id = a.activity_id
),
open_activities as (
    select message_id,
           list({'id': activity_id, 'title': title, 'kind': kind, 'week': week,
                 'due_at': due_at, 'url': url} order by due_at nulls last, week, title) as items
    from calendar
    where not is_done
      and coalesce(opens_at <= as_of, true)
      and coalesce(week < course_week, due_at < as_of, false)
    group by all
),
this_week as (
    select message_id,
           list({'id': activity_id, 'title': title, 'kind': kind, 'week': week,
                 'due_at': due_at, 'url': url} order by due_at nulls last, weight, title) as items
    from calendar
    where week = course_week
       or (due_at >= as_of and due_at < as_of + interval 7 day)
    group by all
),
own_last_week as (
    select b.message_id,
           count(distinct p.activity_id) filter (where is_completion(p.verb))
               as activities_done,
           count(distinct p.occurred_at::date) as active_days
    from batch b
    join progress_events p on p.learner_id = b.learner_id and p.course_id = b.course_id
    where p.occurred_at > b.as_of - interval 7 day and p.occurred_at <= b.as_of
    group by all
),
cohort_last_week as (
    select c.course_id, c.as_of,
           count(distinct p.learner_id) as cohort_active,
           count(*) filter (where is_completion(p.verb))
               as cohort_completed_activities
    from (select distinct course_id, as_of from batch) c
    join progress_events p on p.course_id = c.course_id
    where p.occurred_at > c.as_of - interval 7 day and p.occurred_at <= c.as_of
    group by all
),
course_contributions as (
    -- the course's most notable contributions of the week, computed once per course and
    -- moment (not once per message: a large cohort posts thousands a week); four, so that
    -- three remain once the learner's own is left out
    select c.course_id, c.as_of, k.learner_id,
           {'author': trim(l.first_name || ' ' || coalesce(left(l.last_name, 1) || '.', '')),
            'title': k.title, 'kind': k.kind, 'url': k.url,
            'n_replies': k.n_replies, 'posted_at': k.posted_at} as item,
           row_number() over (partition by c.course_id, c.as_of
                              order by k.is_notable desc, k.n_replies desc, k.posted_at desc,
                                       k.contribution_id) as rank
    from (select distinct course_id, as_of from batch) c
    join contributions k on k.course_id = c.course_id
    join learners l on l.learner_id = k.learner_id
    where k.posted_at > c.as_of - interval 7 day and k.posted_at <= c.as_of
    qualify rank <= 4
),
contributions_last_week as (
    -- colleagues' notable contributions: notable ones first, then the most discussed
    select b.message_id, list(t.item order by t.rank)[1:3] as items
    from batch b
    join course_contributions t on t.course_id = b.course_id and t.as_of = b.as_of
                               and t.learner_id <> b.learner_id
    group by all
),
final as (
    select
        b.message_id, b.message_key, b.variant, b.trigger, b.locale, b.to_email, b.campaign_id,
        b.learner_id, b.course_id, b.as_of, b.not_before, b.stage,
        {'id': l.learner_id, 'first_name': l.first_name, 'last_name': l.last_name,
         'name': trim(coalesce(l.first_name, '') || ' ' || coalesce(l.last_name, '')),
         'email': l.email, 'locale': b.locale, 'timezone': coalesce(tz.name, $timezone)} as learner,
        {'id': c.course_id, 'title': c.title, 'url': c.url, 'forum_url': c.forum_url,
         'starts_on': c.starts_on, 'ends_on': c.ends_on, 'week': b.course_week,
         'weeks': (date_diff('day', c.starts_on, c.ends_on) // 7 + 1)::integer} as course,
        {'percent': b.progress, 'inactive_days': b.inactive_days,
         'enrolled_days': b.enrolled_days, 'stalled_days': b.stalled_days,
         'overdue': b.overdue, 'started': b.is_started, 'completed': b.is_completed} as progress,
        {'activities_done': coalesce(o.activities_done, 0), 'active_days': coalesce(o.active_days, 0),
         'cohort_active': coalesce(cl.cohort_active, 0),
         'cohort_completed_activities': coalesce(cl.cohort_completed_activities, 0)} as last_week,
        coalesce(oa.items, []) as open_activities,
        coalesce(tw.items, []) as this_week,
        coalesce(cw.items, []) as colleagues_contributions,
        case when b.trigger like 'activity:%' then
            {'id': act.activity_id, 'title': act.title, 'kind': act.kind, 'week': act.week,
             'due_at': act.due_at, 'url': act.url} end as activity
    from batch b
    join learners l on l.learner_id = b.learner_id
    join courses c on c.course_id = b.course_id
    left join (select name from pg_timezone_names()) tz on tz.name = l.timezone
    left join open_activities oa using (message_id)
    left join this_week tw using (message_id)
    left join own_last_week o using (message_id)
    left join cohort_last_week cl on cl.course_id = b.course_id and cl.as_of = b.as_of
    left join contributions_last_week cw using (message_id)
    left join activities act on b.trigger like 'activity:%' and act.course_id = b.course_id
                            and act.activity_id = substr(b.trigger, length('activity:') + 1)
)
select * from final order by message_id
