-- Planned messages that no longer make sense are cancelled before delivery, with the
-- reason: the address was suppressed since (unsubscribe, bounce), the learner withdrew,
-- a later run saw the learner leave the stages the message is for, or a weekly message's
-- week is over in the learner's timezone.
-- The tables it reads are filtered on the keys of the campaign's due messages (cancel_due):
-- on the shared warehouse those filters go to PostgreSQL as literals (warehouse/shared.py,
-- push_keys) where a join's keys would not, so it reads those learners' rows, not every
-- enrolment, learner and stage of the warehouse.
-- One window of the due messages at a time (message_id in ($after, $upto], cancel_stale):
-- the work, and the memory it takes, do not grow with the number due (1,000,000 due at
-- once: 95 MiB of hash tables, kept by the process afterwards).
create or replace temp table cancel_due as
select message_id, learner_id
from messages
where campaign_id = $campaign_id and status in ('planned', 'failed') and not_before <= $now
  and message_id > $after and message_id <= $upto;

-- the members of the due digests (their team's timezone)
create or replace temp table cancel_digest_members as
select message_id, learner_id
from digest_members
where message_id in (select message_id from cancel_due);

update messages
set status = 'cancelled',
    error = c.reason
from (
    select m.message_id,
           case
               when s.email is not null then 'unsubscribed'
               when e.status = 'withdrawn' or e.withdrawn_at <= $now then 'withdrawn'
               -- the team recorded that they are stopping (the desk): a withdrawal too
               when stop.learner_id is not null then 'withdrawn'
               when later.campaign_id is not null
                    and not list_contains($targets, m.message_key || ':' || coalesce(later.stage, ''))
                   then 'stage_changed'
               -- (a manager's digest: the week of the team's timezone, as planned)
               when m.trigger in ('while_in', 'every', 'digest')
                    and date_trunc('week', timezone(coalesce(tz.name, mtz.team_tz, $timezone), $now))
                        > date_trunc('week', timezone(coalesce(tz.name, mtz.team_tz, $timezone),
                                                      m.not_before))
                   then 'missed_week'
           end as reason
    from messages m
    left join (select distinct lower(email) as email, campaign_id from suppressions) s
        on s.email = lower(m.to_email) and (s.campaign_id is null or s.campaign_id = m.campaign_id)
    left join (select * from enrolments
               where learner_id in (select learner_id from cancel_due)) e
        using (learner_id, course_id)
    left join (select learner_id, course_id from follow_up_actions
               where kind = 'contact' and occurred_at <= $now
                 and learner_id in (select learner_id from cancel_due)
               group by all having arg_max(outcome, occurred_at) = 'stopping') stop
        using (learner_id, course_id)
    left join (select * from learners
               where learner_id in (select learner_id from cancel_due)) l
        using (learner_id)
    left join (select name from pg_timezone_names()) tz on tz.name = l.timezone
    -- a digest's manager: the timezone most of the team has (engine/sql/digest_plan.sql, delivery/digest_context.sql)
    left join (
        select dm.message_id, coalesce(tzn.name, $timezone) as team_tz
        from cancel_digest_members dm
        join messages d on d.message_id = dm.message_id and d.campaign_id = $campaign_id
                       and d.trigger = 'digest' and d.status in ('planned', 'failed')
        join learners dl on dl.learner_id = dm.learner_id
                        and dl.learner_id in (select learner_id from cancel_digest_members)
        left join (select name from pg_timezone_names()) tzn on tzn.name = dl.timezone
        group by dm.message_id, coalesce(tzn.name, $timezone)
        qualify row_number() over (partition by dm.message_id
                                   order by count(*) desc, (team_tz = $timezone) desc,
                                            team_tz) = 1
    ) mtz on mtz.message_id = m.message_id
    left join (select * from stage_state
               where campaign_id = $campaign_id
                 and learner_id in (select learner_id from cancel_due)) later
        on later.campaign_id = m.campaign_id and later.learner_id = m.learner_id
       and later.course_id = m.course_id and later.run_id <> m.run_id
       -- only stage-triggered messages depend on the stage
       and (m.trigger like 'enter:%' or m.trigger in ('while_in', 'every'))
    where m.campaign_id = $campaign_id
      and m.status in ('planned', 'failed')
      and m.not_before <= $now
      and m.message_id > $after and m.message_id <= $upto
) c
where messages.message_id = c.message_id and c.reason is not null
  and messages.message_id in (select message_id from cancel_due)
returning messages.error
