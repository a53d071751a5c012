-- eval_digest_members: one row per learner per course of the evaluation (eval_state) who has
-- a manager and whose stage is in one of the digest's groups. The compiled group CASE
-- replaces the marker below. Control-group learners are kept here (they count in the team's
-- locale and in "not listed") but never listed by name.
create or replace temp table eval_digest_members as
select
    s.learner_id,
    s.course_id,
    lower(trim(l.manager_email)) as manager_email,
    /*@group_case*/ as group_name,
    s.stage,
    s.is_holdout,
    s.msg_locale,
    s.tz
from eval_state s
join learners l using (learner_id)
where nullif(trim(l.manager_email), '') is not null
  and /*@group_case*/ is not null;

-- eval_digests: one row per manager of eval_digest_members: their locale and timezone (the
-- ones most of their team has; ties go to the campaign's default, then alphabetical), this
-- week's digest moment there, and what the policies say: the address must be well formed
-- and not suppressed, the team must have someone to list, the week's digest must not be in
-- the ledger already, and the send window (quiet hours, send days) holds in the manager's
-- timezone (a digest it pushes into the next week is that week's no more: missed_week).
-- relance_allowed() is the macro policies.sql defines on this connection.
create or replace temp table eval_digests as
with teams as (
    select manager_email,
           count(*) filter (where not is_holdout) as n_listed,
           count(*) filter (where is_holdout)     as n_withheld
    from eval_digest_members
    group by all
),
locales as (
    select manager_email, msg_locale as locale
    from eval_digest_members
    group by manager_email, msg_locale
    qualify row_number() over (partition by manager_email
                               order by count(*) desc, (msg_locale = $default_locale) desc,
                                        msg_locale) = 1
),
zones as (
    select manager_email, tz
    from eval_digest_members
    group by manager_email, tz
    qualify row_number() over (partition by manager_email
                               order by count(*) desc, (tz = $timezone) desc, tz) = 1
),
clocked as (
    select t.*, lo.locale, z.tz,
           timezone(z.tz, $as_of) as local_as_of,
           date_trunc('week', timezone(z.tz, $as_of))
               + to_minutes($digest_minutes) as this_week_moment
    from teams t
    join locales lo using (manager_email)
    join zones z using (manager_email)
),
moment as (
    -- as for weekly messages (engine.clock_columns): this week's moment if still ahead;
    -- next week's if less than a day away; otherwise now, this week's having passed unsent
    select *,
           case when this_week_moment > local_as_of then this_week_moment
                when this_week_moment + interval 7 day <= local_as_of + interval 1 day
                    then this_week_moment + interval 7 day
                else local_as_of end as base_local
    from clocked
),
keyed as (
    select *,
           strftime(base_local, '%G-W%V') as week,
           date_trunc('week', base_local) as occasion_week,
           $campaign_id || '/digest/manager:' || manager_email || '/week:'
               || strftime(base_local, '%G-W%V') as idempotency_key
    from moment
),
checked as (
    select k.*,
           case
               -- the address goes into a To header: one every channel can send to
               when email_problem(k.manager_email) is not null then 'invalid_address'
               when sup.email is not null then 'unsubscribed'
               when k.n_listed = 0 then 'empty_team'
               when led.idempotency_key is not null then 'already_' || led.status
           end as refusal
    from keyed k
    left join (select distinct lower(email) as email from suppressions
               where campaign_id is null or campaign_id = $campaign_id) sup
        on sup.email = k.manager_email
    left join messages led on led.idempotency_key = k.idempotency_key
),
windowed as (
    select *,
           refusal is null
               and not relance_allowed(base_local, $send_days, $quiet_start, $quiet_end)
               as needs_window,
           case when needs_window then list_min(list_filter(
               list_transform(range(8),
                   lambda d: date_trunc('day', base_local) + to_days(d::integer)
                             + to_minutes($open_minutes)),
               lambda x: x >= base_local
                         and relance_allowed(x, $send_days, $quiet_start, $quiet_end)))
           end as window_local
    from checked
),
final as (
    select
        manager_email, locale, tz, week, idempotency_key, n_listed, n_withheld,
        case when needs_window then timezone(tz, window_local)
             else greatest($as_of, timezone(tz, base_local)) end as not_before,
        case when refusal is null and needs_window
                  and date_trunc('week', window_local) > occasion_week
             then 'missed_week' else refusal end as reason_refused,
        needs_window
    from windowed
)
select
    manager_email, locale, tz, week, idempotency_key, n_listed, n_withheld,
    case when reason_refused is null then not_before end as not_before,
    case when reason_refused is not null then 'suppressed'
         when not_before > $as_of then 'deferred'
         else 'planned' end as outcome,
    case when reason_refused is not null then reason_refused
         when needs_window then 'outside_send_window'
         when not_before > $as_of then 'scheduled_time' end as reason
from final
