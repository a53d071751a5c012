-- One row per message of delivery_batch: everything its templates may use, as of the run
-- that planned it (its decision row), so a message deferred to later still speaks of the
-- week it was planned for. Read from what context_scope.sql computed once for the whole
-- delivery (its ctx_* tables), the batch's slice of them: $first and $last are its
-- first and last message_id.
-- open_activities are earlier activities the learner has not done (catching up);
-- this_week is the course calendar of the current week.
with batch as (
    select s.*
    from ctx_scope s
    join delivery_batch b using (message_id)
    where s.message_id between $first and $last
),
messages_of_batch as (
    select m.*
    from ctx_messages m
    join delivery_batch b using (message_id)
    where m.message_id between $first and $last
),
contributions_last_week as (
    -- colleagues' notable contributions: notable ones first, then the most discussed
    select b.message_id, list(t.item order by t.rank)[1:3] as items
    from batch b
    join ctx_course_contributions t on t.course_id = b.course_id and t.as_of = b.as_of
                                   and t.learner_id <> b.learner_id
    group by all
),
-- each message's own values first (materialized), and the course calendar of its week
-- joined last: joined first, each of the four joins after copied its lists (a 2,000-message
-- batch's query: 74 -> 54 ms of CPU, the same rows)
base as materialized (
    select
        b.message_id, b.message_key, b.variant, b.trigger, b.locale, b.to_email, b.campaign_id,
        b.learner_id, b.course_id, b.as_of, b.not_before, b.stage, b.course_week,
        {'id': b.learner_id, 'first_name': b.first_name, 'last_name': b.last_name,
         'name': trim(coalesce(b.first_name, '') || ' ' || coalesce(b.last_name, '')),
         'email': b.email, 'locale': b.locale, 'timezone': coalesce(b.timezone, $timezone)} as learner,
        {'id': c.course_id, 'title': c.title, 'url': c.url, 'forum_url': c.forum_url,
         'starts_on': c.starts_on, 'ends_on': c.ends_on, 'week': b.course_week,
         'weeks': (date_diff('day', c.starts_on, c.ends_on) // 7 + 1)::integer} as course,
        {'percent': b.progress, 'inactive_days': b.inactive_days,
         'enrolled_days': b.enrolled_days, 'stalled_days': b.stalled_days,
         'overdue': b.overdue, 'started': b.is_started, 'completed': b.is_completed} as progress,
        {'activities_done': m.activities_done, 'active_days': m.active_days,
         'cohort_active': coalesce(cl.cohort_active, 0),
         'cohort_completed_activities': coalesce(cl.cohort_completed_activities, 0)} as last_week,
        m.done_ids,
        coalesce(cw.items, []) as colleagues_contributions,
        case when b.trigger like 'activity:%' then
            {'id': act.activity_id, 'title': act.title, 'kind': act.kind, 'week': act.week,
             'due_at': act.due_at, 'url': act.url} end as activity
    from batch b
    -- (left: ctx_messages has a row for every message of ctx_scope, or, when its scope
    -- did not make it, none: context_skipped.sql)
    left join messages_of_batch m using (message_id)
    join courses c on c.course_id = b.course_id
    left join ctx_cohort_last_week cl on cl.course_id = b.course_id and cl.as_of = b.as_of
    left join contributions_last_week cw using (message_id)
    left join activities act on b.trigger like 'activity:%' and act.course_id = b.course_id
                            and act.activity_id = substr(b.trigger, length('activity:') + 1)
),
final as (
    select
        x.message_id, x.message_key, x.variant, x.trigger, x.locale, x.to_email, x.campaign_id,
        x.learner_id, x.course_id, x.as_of, x.not_before, x.stage, x.learner, x.course,
        x.progress, x.last_week,
        coalesce(list_filter(w.earlier, lambda a: not list_contains(x.done_ids, a.id)), [])
            as open_activities,
        coalesce(w.this_week, []) as this_week,
        x.colleagues_contributions, x.activity
    from base x
    left join ctx_weeks w on w.course_id = x.course_id and w.as_of = x.as_of
                         and w.course_week is not distinct from x.course_week
)
select * from final order by message_id
