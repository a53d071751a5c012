-- kpi_helpful: one row per campaign and message whose learners answered "was this helpful?"
-- (messages with `helpful: true`; helpful_answers, one answer per message, the last one
-- given): the messages sent, the answers, yes, no, the share of yes and of messages
-- answered, and the comments, relayed only when the message has at least
-- `helpful_min_answers` answers (SRES's rule: among few answers a comment may say who wrote
-- it; default 5, `set variable helpful_min_answers = <n>`, RELANCE_HELPFUL_MIN_ANSWERS for
-- `relance report`); below it, only how many comments are withheld.
create or replace view kpi_helpful as
with sent as (
    select campaign_id, message_key, count(*) as sent
    from messages where status = 'sent'
    group by all
),
answers as (
    select campaign_id, message_key,
           count(*)                                   as answers,
           count(*) filter (where answer = 'yes')     as yes,
           count(*) filter (where answer = 'no')      as no,
           list(comment order by answered_at, message_id) filter (where comment is not null)
                                                      as all_comments
    from helpful_answers
    group by all
),
rule as (
    select coalesce(try_cast(getvariable('helpful_min_answers') as integer), 5) as min_answers
)
select
    a.campaign_id, a.message_key,
    coalesce(s.sent, 0)                                       as sent,
    a.answers, a.yes, a.no,
    round(a.yes / a.answers, 4)                               as yes_rate,
    round(a.answers / nullif(s.sent, 0), 4)                   as answer_rate,
    r.min_answers                                             as min_answers_for_comments,
    case when a.answers >= r.min_answers then coalesce(a.all_comments, []) end as comments,
    case when a.answers < r.min_answers then coalesce(len(a.all_comments), 0) else 0 end
                                                              as comments_withheld
from answers a
cross join rule r
left join sent s using (campaign_id, message_key)
