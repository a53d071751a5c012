-- One learner's timeline on one course, newest first, as of $as_of: what relance sent (or
-- has planned), what they wrote back, their activity in the course, and what the team
-- recorded. One row per item: when, what kind, a short text, and a detail.
select * from (
    select coalesce(m.sent_at, m.not_before) as happened_at, 'message' as kind,
           m.campaign_id || ' · ' || m.message_key as text,
           m.status || coalesce(' · ' || m.subject, '') as detail
    from messages m
    where m.learner_id = $learner_id and m.course_id = $course_id
      and m.planned_at <= $as_of
    union all
    select r.received_at, 'reply', coalesce(r.subject, ''),
           left(coalesce(r.body_text, ''), 600) || coalesce(' · ' || r.category, '')
    from learner_replies r
    where r.learner_id = $learner_id and r.course_id = $course_id
      and r.received_at <= $as_of and r.automatic is null
    union all
    select * from (
        select p.occurred_at, 'activity', p.verb || coalesce(' · ' || a.title, ''),
               coalesce(p.progress::integer::varchar || ' %', '')
        from progress_events p
        left join activities a using (course_id, activity_id)
        where p.learner_id = $learner_id and p.course_id = $course_id
          and p.occurred_at <= $as_of
        order by p.occurred_at desc
        limit 30
    )
    union all
    select f.occurred_at, f.kind,
           coalesce(f.channel, '') || coalesce(' · ' || f.outcome, '')
               || coalesce(' · ' || strftime(f.resume_on, '%Y-%m-%d'), '')
               || coalesce(' · ' || strftime(f.snooze_until, '%Y-%m-%d'), ''),
           coalesce(f.note, '') || ' (' || f.actor_email || ')'
    from follow_up_actions f
    where f.learner_id = $learner_id and f.course_id = $course_id
      and f.occurred_at <= $as_of
)
order by happened_at desc
limit 120
