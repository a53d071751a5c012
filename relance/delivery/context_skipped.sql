-- What context.sql reads in place of a context_scope.sql table that a delivery's scope
-- did not make, because no message of the scope includes a recap section the table is
-- for (messages.scope): no row, the same columns. Each is a common table expression of
-- the table's name put before context.sql's own, which hides the table of that name (an
-- earlier scope's, on this connection). The values context.sql makes from them are those
-- of the sections no message of the scope renders.
ctx_messages as (select null::varchar as message_id, null::varchar[] as done_ids, null::bigint as activities_done, null::bigint as active_days where false)
ctx_weeks as (select null::varchar as course_id, null::integer as course_week, null::timestamptz as as_of, null::struct(id varchar, title varchar, kind varchar, week integer, due_at timestamptz, url varchar)[] as earlier, null::struct(id varchar, title varchar, kind varchar, week integer, due_at timestamptz, url varchar)[] as this_week where false)
ctx_cohort_last_week as (select null::varchar as course_id, null::timestamptz as as_of, null::bigint as cohort_active, null::bigint as cohort_completed_activities where false)
ctx_week_contributions as (select null::varchar as course_id, null::timestamptz as as_of, null::varchar as contribution_id, null::varchar as learner_id, null::varchar as title, null::varchar as kind, null::varchar as url, null::integer as n_replies, null::timestamptz as posted_at, null::boolean as is_notable where false)
ctx_course_contributions as (select null::varchar as course_id, null::timestamptz as as_of, null::varchar as learner_id, null::struct(author varchar, title varchar, kind varchar, url varchar, n_replies integer, posted_at timestamptz) as item, null::bigint as rank where false)
