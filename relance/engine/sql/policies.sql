-- eval_candidates: every message a trigger proposed (the compiled triggers, below), with
-- what the policies said. Refusals first (the first that applies is the reason), then the send
-- window in the learner's own timezone, then the campaign's own weekly limit per learner
-- (message order in the file decides which goes), then the weekly frequency cap over all
-- campaigns. Weeks are the learner's local calendar weeks; limits count per person, even
-- when a campaign covers several of their courses.
-- At send time (delivery/recheck.py) the same policies judge the messages about to go out
-- as if they were not in the ledger yet (the /*@recheck*/ markers leave them out), so each
-- gets the verdict it would get now.
create or replace temp macro relance_allowed(t, days, qs, qe) as
    list_contains(days, isodow(t)) and (qs is null or not (
        case when qs > qe then t::time >= qs or t::time < qe
             else t::time >= qs and t::time < qe end));

create or replace temp table eval_candidates as
with raw as (
/*@triggers*/
),
sent_milestones as (
    select learner_id, course_id, message_key,
           max(try_cast(split_part(trigger, ':', 2) as double)) as max_milestone
    from messages
    where campaign_id = $campaign_id
      and trigger like 'milestone:%'
      and (status in ('planned', 'sent', 'uncertain')
           or (status = 'failed' and attempts < $max_attempts))    -- still to be retried
      /*@recheck*/
    group by all
),
checked as (
    select
        r.*,
        case
            when r.is_holdout then 'holdout'
            when r.email_refusal is not null then r.email_refusal
            when r.is_suppressed then 'unsubscribed'
            when r.recently_contacted then 'recently_contacted'
            when r.course_ended and not r.after_course_end then 'course_ended'
            when r.completed and not r.allows_completed then 'completed'
            when led.idempotency_key is not null then 'already_' || led.status
            when r.milestone is not null and sm.max_milestone >= r.milestone then 'already_sent'
        end as refusal
    from raw r
    -- the campaign's keys only (each begins with its id and '/'), a range the shared
    -- warehouse's extension sends to PostgreSQL: the ledger of every campaign is not read
    left join messages led on led.idempotency_key = r.idempotency_key
                           and led.idempotency_key >= $campaign_id || '/'
                           and led.idempotency_key < $campaign_id || '0' /*@recheck_led*/
    left join sent_milestones sm
        on sm.learner_id = r.learner_id and sm.course_id = r.course_id
       and sm.message_key = r.message_key
),
windowed as (
    -- the first allowed local moment from base_local: itself, or a window opening in the
    -- next 8 days (only computed, and converted back to UTC, when base_local is not allowed)
    select
        *,
        refusal is null and not relance_allowed(base_local, $send_days, $quiet_start, $quiet_end)
            as needs_window,
        case when needs_window then list_min(list_filter(
            list_transform(range(8),
                lambda d: date_trunc('day', base_local) + to_days(d::integer) + to_minutes($open_minutes)),
            lambda x: x >= base_local and relance_allowed(x, $send_days, $quiet_start, $quiet_end)))
        end as window_local
    from checked
),
timed as (
    select
        * exclude (window_local, refusal),
        case when needs_window then timezone(tz, window_local) else base_at end as not_before,
        date_trunc('week', coalesce(window_local, base_local)) as send_week,
        -- a weekly message the send window pushes into the next week is that week's no more
        case when refusal is null and occasion_week is not null
                  and date_trunc('week', coalesce(window_local, base_local)) > occasion_week
             then 'missed_week' else refusal end as refusal
    from windowed
),
ranked as (
    select
        *,
        -- unrefused first, then by message order: the rank among the unrefused is rnk itself
        row_number() over by_learner as rnk,
        first_value(message_key) over by_learner as winner
    from timed
    -- per learner and local week, across the campaign's courses: the weekly limits are per
    -- person and week. Integer sort keys: the unrefused first, then message order, then
    -- the course.
    window by_learner as (partition by learner_id, send_week
                          order by (refusal is not null)::integer * 1000 + priority, hash(course_id))
),
ledger as (
    -- the messages committed around this week (still to be retried: failed ones too)
    select m.learner_id, m.campaign_id, m.not_before
    from messages m
    where (m.status in ('planned', 'sent', 'uncertain')
           or (m.status = 'failed' and m.attempts < $max_attempts))
      and m.not_before between $as_of - interval 8 day and $as_of + interval 16 day
      /*@recheck*/
),
committed as (
    -- messages already committed to these learners around this week, by the local week
    -- they were due in (not_before: the logical clock, so replays of past weeks count right).
    -- The learners' timezones only for those in the ledger: grouping all of eval_state cost
    -- 0.8 s at 1M learners whatever the ledger held.
    select m.learner_id,
           date_trunc('week', timezone(t.tz, m.not_before)) as send_week,
           count(*) as n_all,
           count(*) filter (where m.campaign_id = $campaign_id) as n_campaign
    from ledger m
    join (select learner_id, any_value(tz) as tz from eval_state
          where learner_id in (select learner_id from ledger) group by all) t using (learner_id)
    group by all
),
capped as (
    select
        r.*,
        coalesce(w.n_campaign, 0) as n_campaign_week,
        coalesce(w.n_all, 0) + r.rnk as nth_all_week
    from ranked r
    left join committed w
        on w.learner_id = r.learner_id and w.send_week = r.send_week
),
final as (
    select
        learner_id, course_id, message_key, priority, trigger, idempotency_key, milestone,
        -- a control learner keeps the moment it would have gone (the re-engagement of
        -- kpi_message_effects is measured from it, for both groups alike)
        case when refusal is null or refusal = 'holdout' then not_before end as not_before,
        case
            when refusal is not null then 'suppressed'
            when n_campaign_week + rnk > $per_campaign then 'suppressed'
            when nth_all_week > $per_week then 'suppressed'
            when not_before > $as_of then 'deferred'
            else 'planned'
        end as outcome,
        case
            when refusal is not null then refusal
            when n_campaign_week >= $per_campaign then 'campaign_weekly_cap'
            when n_campaign_week + rnk > $per_campaign then 'superseded:' || winner
            when nth_all_week > $per_week then 'frequency_cap'
            when needs_window then 'outside_send_window'
            when not_before > $as_of then 'scheduled_time'
        end as reason,
        rnk
    from capped
)
select * from final
