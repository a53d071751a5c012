-- eval_audience: one row per learner per course the campaign targets, as of $as_of.
-- Withdrawn learners are out from their withdrawal date on; learners enrolled later are
-- not in yet. The designer's `audience.where` condition replaces the marker below, and the
-- audiences of the campaigns it excludes (`audience.exclude`) the one after it. A learner
-- the team recorded as stopping (the desk's follow_up_actions) is out as a withdrawal; one
-- it reached lately is in, `recently_contacted` (policies.sql refuses their messages).
create or replace temp table eval_audience as
with base as (
    select
        e.learner_id,
        e.course_id,
        e.cohort,
        e.enrolled_at,
        e.status,
        e.completed_at,
        l.email,
        l.first_name,
        l.last_name,
        l.locale,
        l.timezone,
        l.manager_email,
        c.title       as course_title,
        c.starts_on,
        c.ends_on
    from enrolments e
    join learners l using (learner_id)
    join courses c using (course_id)
    where e.enrolled_at <= $as_of
      and not coalesce(e.withdrawn_at <= $as_of, e.status = 'withdrawn')
      and ($courses is null or list_contains($courses, e.course_id))
      and ($cohorts is null or list_contains($cohorts, e.cohort))
      /*@learners*/
),
filtered as (
    select * from base
    where (
        /*@where*/
    )
    and not (
        /*@exclude*/
    )
),
desk as (
    -- what the team last recorded about each learner up to $as_of (the desk's
    -- follow_up_actions; a later row supersedes): the outcome of the last contact, and
    -- until when automated messages wait for it (quiet_after_contact_days after a contact
    -- that reached them, or the date they said they would resume). No answer is no contact.
    select learner_id, course_id,
           arg_max(outcome, occurred_at) as last_outcome,
           max(greatest(occurred_at + to_days($quiet_after_contact_days),
                        case when outcome = 'will_resume' then resume_on end))
               filter (where outcome <> 'no_answer') as quiet_until
    from follow_up_actions
    where kind = 'contact' and occurred_at <= $as_of
    group by all
),
locale_map as (
    -- each learner locale seen, to the campaign locale whose templates it gets (spelled as
    -- declared, since that is the template folder's name): exact, else same language,
    -- else the campaign's default. The locales of every learner, not just the audience's:
    -- a lookup with a few extra rows, and `filtered` read once is not materialized (at 1M
    -- learners a copy of every column of `base`, names and addresses included); a recheck's
    -- learners' locales only (the marker: on the shared warehouse, a key list, not the table)
    select
        l.locale,
        coalesce(
            list_filter($locales, lambda x: lower(x) = lower(replace(l.locale, '_', '-')))[1],
            list_filter($locales, lambda x: lower(x) = split_part(lower(replace(l.locale, '_', '-')), '-', 1))[1],
            $default_locale) as msg_locale
    from (select distinct locale from learners /*@locale_learners*/) l
),
final as (
    -- narrow on purpose: every later step copies these columns for a million learners;
    -- names and addresses are joined back from `learners` where they are shown or sent
    select
        f.learner_id,
        f.course_id,
        f.enrolled_at,
        f.status,
        f.completed_at,
        f.starts_on,
        f.ends_on,
        -- no address, or one no channel can send to (the channels' rule, email_problem in
        -- warehouse/macros.sql: loaders quarantine such addresses, but a learner loaded
        -- another way, or before the rule, still must not be planned for)
        case when f.email is null or trim(f.email) = '' then 'no_email'
             when email_problem(f.email) is not null then 'invalid_email'
        end as email_refusal,
        -- an unknown timezone in the source data falls back to the campaign's
        coalesce(tz.name, $timezone) as tz,
        coalesce(lm.msg_locale, $default_locale) as msg_locale,
        -- unsubscribed, bounced or complained: from this campaign or from all
        sup.email is not null as is_suppressed,
        -- contacted by the team lately: no automated message until quiet_until
        coalesce(d.quiet_until > $as_of, false) as recently_contacted
    from filtered f
    left join (select name from pg_timezone_names()) tz on tz.name = f.timezone
    left join locale_map lm on lm.locale is not distinct from f.locale
    left join (select distinct lower(email) as email from suppressions
               where campaign_id is null or campaign_id = $campaign_id) sup
        on sup.email = lower(f.email)
    left join desk d on d.learner_id = f.learner_id and d.course_id = f.course_id
    -- a person of the team recorded that they are stopping (the desk): a withdrawal
    where not coalesce(d.last_outcome = 'stopping', false)
)
select * from final
