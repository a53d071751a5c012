-- Included by the events' loads (load_progress_events*.sql).
-- Why a typed event is set aside (NULL: it is not), in one place for both looks below.
create or replace temp macro relance_event_reason(learner_id, course_id, verb, occurred_utc,
                                                  occurred_local, occurred_at_text, progress,
                                                  progress_text, enrolled) as case
    when coalesce(learner_id, '') = '' then 'missing learner_id'
    when coalesce(course_id, '') = '' then 'missing course_id'
    when coalesce(verb, '') = '' then 'missing verb'
    when not relance_known_verb(verb)
        then 'unknown verb: ' || verb || ' (expected accessed, progressed, completed, submitted, passed, failed or commented)'
    when occurred_utc is null and occurred_local is null
        then 'unreadable or missing occurred_at: ' || coalesce(trim(occurred_at_text), '')
    when not relance_blank(progress_text) and (progress is null or progress not between 0 and 1)
        then 'progress must be a share 0-1 or a percentage: ' || progress_text
    when not enrolled then 'unknown enrolment: learner ' || learner_id || ' on course ' || course_id
end;
