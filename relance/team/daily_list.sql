-- team_lists: each person's list for their day as of $as_of (their own date in their
-- timezone): whom to contact and why, in priority order, cut at their capacity.
-- Inputs: team_people (relance/team/assign.py), team_assignments (who follows whom), the
-- follow-up lists of each campaign's latest run (follow_ups), replies routed to the desk
-- (learner_replies), and what the team recorded (follow_up_actions).
--
-- Who is listed: a learner on a campaign's follow-up list, or who replied in the last
-- $reply_days days (a reply routed to their person's desk). Who is not: snoozed until
-- after today; stopping; contacted (an outcome other than no answer) less than
-- $list_after_contact_days ago, or said they would resume on a later date — unless they
-- wrote since. Priority: a reply not yet answered by a contact, then the risk score (when
-- the warehouse has a risk model), then days silent, then days stalled, then least progress.
create or replace temp table team_lists as
with people as (
    select email as person_email, name as person_name, locale as person_locale, tz,
           capacity, timezone(tz, $as_of)::date as today
    from team_people
    where role in ('community_manager', 'tutor') and capacity > 0
),
latest as (
    select campaign_id, arg_max(run_id, started_at) as run_id
    from campaign_runs
    where status = 'succeeded' and as_of <= $as_of
    group by all
),
listed as (
    -- a learner on several campaigns' lists is listed once: the campaign first by name
    select f.learner_id, f.course_id, f.campaign_id, f.run_id, f.reason, f.stage
    from follow_ups f
    join latest using (campaign_id, run_id)
    qualify row_number() over (partition by f.learner_id, f.course_id order by f.campaign_id) = 1
),
replies as (
    select learner_id, course_id, max(received_at) as last_reply_at,
           list({'at': received_at, 'subject': subject, 'text': left(body_text, 280),
                 'category': category} order by received_at desc)[1:3] as recent_replies
    from learner_replies
    where status = 'routed' and routed_to = 'desk' and learner_id is not null
      and received_at <= $as_of and received_at > $as_of - to_days($reply_days)
    group by all
),
actions as (
    -- what was last recorded (a later row supersedes)
    select learner_id, course_id,
           max(occurred_at) filter (where kind = 'contact') as last_contact_at,
           arg_max(outcome, occurred_at) filter (where kind = 'contact') as last_outcome,
           arg_max(channel, occurred_at) filter (where kind = 'contact') as last_channel,
           arg_max(resume_on, occurred_at) filter (where kind = 'contact') as resume_on,
           arg_max(snooze_until, occurred_at) filter (where kind = 'snooze') as snooze_until,
           max(occurred_at) filter (where kind = 'contact' and outcome <> 'no_answer')
               as last_reached_at
    from follow_up_actions
    where occurred_at <= $as_of
    group by all
),
candidates as (
    select coalesce(l.learner_id, r.learner_id) as learner_id,
           coalesce(l.course_id, r.course_id) as course_id,
           l.campaign_id, l.run_id, l.stage,
           coalesce(l.reason, 'replied') as reason,
           r.last_reply_at, r.recent_replies
    from listed l
    full join replies r using (learner_id, course_id)
),
risks as (
    -- the risk score of the learners listed, when the warehouse has a risk model (the
    -- engine's `risk` measure, engine/risk_score.py); else no rows
/*@risk*/
),
joined as (
    select c.*, a.last_contact_at, a.last_outcome, a.last_channel, a.resume_on,
           a.snooze_until, a.last_reached_at, p.*,
           coalesce(c.last_reply_at > coalesce(a.last_contact_at, '-infinity'::timestamptz),
                    false) as wrote_since
    from candidates c
    join team_assignments ta using (learner_id, course_id)
    join people p on p.person_email = ta.person_email
    left join actions a using (learner_id, course_id)
),
kept as (
    select * from joined
    where not coalesce(last_outcome = 'stopping', false)
      and not coalesce(snooze_until > today, false)
      and (wrote_since or not coalesce(
              last_reached_at > $as_of - to_days($list_after_contact_days)
              or (last_outcome = 'will_resume' and resume_on > today), false))
),
measured as (
    select k.*, d.progress, d.inactive_days, d.stalled_days, d.overdue, rk.risk,
           (select max(e.occurred_at) from progress_events e
            where e.learner_id = k.learner_id and e.course_id = k.course_id
              and e.occurred_at <= $as_of) as last_activity_at
    from kept k
    left join decisions d using (run_id, learner_id, course_id)
    left join risks rk using (learner_id, course_id)
),
ranked as (
    select *,
           row_number() over (partition by person_email
                              order by wrote_since desc, risk desc nulls last,
                                       inactive_days desc nulls last,
                                       stalled_days desc nulls last, progress nulls last,
                                       learner_id, course_id) as rank,
           count(*) over (partition by person_email) as n_waiting
    from measured
),
sent as (
    select m.learner_id, m.course_id,
           list({'message': m.message_key, 'campaign': m.campaign_id, 'at': m.sent_at}
                order by m.sent_at desc)[1:3] as recent_sent
    from messages m
    join ranked r using (learner_id, course_id)
    where r.rank <= r.capacity and m.status = 'sent' and m.sent_at <= $as_of
    group by all
)
select r.person_email, r.person_name, r.person_locale, r.today, r.rank, r.n_waiting,
       r.learner_id, r.course_id, l.first_name, l.last_name, l.email, r.campaign_id,
       r.reason, r.stage, r.risk, r.progress, r.inactive_days, r.stalled_days, r.last_activity_at,
       s.recent_sent, r.recent_replies, r.wrote_since, r.last_contact_at, r.last_outcome,
       r.last_channel
from ranked r
join learners l using (learner_id)
left join sent s using (learner_id, course_id)
where r.rank <= r.capacity
