-- xAPI statements (stg_xapi__statements: one JSON statement per row, as the LRS sent it)
-- -> the model's entities as text in stg_xapi__<entity>, for the shared loader.
-- Needs the temp tables xapi_verb_map (key: a verb IRI or its last segment -> model verb,
-- 'contribution', 'enrolment' or 'ignore') and xapi_courses (iri prefix -> course_id, title).
--
-- What a statement says, in columns. The course is the context's parent (else grouping)
-- activity, or the configured course whose IRI begins that activity's or the object's id.
create or replace temp table xapi_s as
with parsed as (
    select
        _file, _row, statement,
        (statement->>'$.id')                                         as statement_id,
        (statement->>'$.verb.id')                                    as verb_iri,
        coalesce((statement->>'$.actor.account.name'),
                 lower(regexp_replace((statement->>'$.actor.mbox'), '^mailto:', '')),
                 (statement->>'$.actor.openid'),
                 (statement->>'$.actor.mbox_sha1sum'))               as learner_id,
        lower(regexp_replace((statement->>'$.actor.mbox'), '^mailto:', '')) as email,
        (statement->>'$.actor.name')                                 as actor_name,
        (statement->>'$.object.id')                                  as object_id,
        (statement->'$.object.definition')                           as object_def,
        coalesce((statement->>'$.context.contextActivities.parent[0].id'),
                 (statement->>'$.context.contextActivities.parent.id'),
                 (statement->>'$.context.contextActivities.grouping[0].id'),
                 (statement->>'$.context.contextActivities.grouping.id')) as context_iri,
        coalesce((statement->'$.context.contextActivities.parent[0].definition'),
                 (statement->'$.context.contextActivities.parent.definition'),
                 (statement->'$.context.contextActivities.grouping[0].definition'),
                 (statement->'$.context.contextActivities.grouping.definition')) as context_def,
        coalesce((statement->>'$.timestamp'), (statement->>'$.stored')) as occurred_at,
        (statement->'$.result')                                      as result
    from stg_xapi__statements
    -- a void passes the filters: its target may have passed them
    where (statement->>'$.verb.id') = 'http://adlnet.gov/expapi/verbs/voided'
       or (($verb_filter is null or (statement->>'$.verb.id') = $verb_filter)
           and ($activity_filter is null or (statement->>'$.object.id') = $activity_filter))
),
coursed as (
    select p.*,
        coalesce(c.course_id, case when not $courses_configured then p.context_iri end) as course_id,
        coalesce(c.iri_exact, p.context_iri)                       as course_iri,
        coalesce(c.title, json_extract_string(p.context_def, '$.name."en-US"'),
                 json_extract_string(p.context_def, '$.name.*')[1]) as course_title
    from parsed p
    left join lateral (
        select course_id, title, case when x.iri = p.context_iri or x.iri = p.object_id then x.iri end as iri_exact
        from xapi_courses x
        where starts_with(coalesce(p.context_iri, ''), x.iri) or starts_with(coalesce(p.object_id, ''), x.iri)
        order by length(x.iri) desc
        limit 1
    ) c on true
)
select c.*,
    -- xAPI's voiding verb, by its exact IRI (not a mapping): the statement takes back another
    case when c.verb_iri = 'http://adlnet.gov/expapi/verbs/voided' then 'void'
         else coalesce(exact.maps_to, last_segment.maps_to) end    as maps_to,
    -- about the course itself (its completion, its overall progress), not one activity
    (c.object_id = c.course_iri or c.object_id = c.course_id)      as about_course,
    coalesce(json_extract_string(c.object_def, '$.name."en-US"'),
             json_extract_string(c.object_def, '$.name.*')[1])     as object_name
from coursed c
left join xapi_verb_map exact on exact.key = c.verb_iri
left join xapi_verb_map last_segment on last_segment.key = regexp_extract(c.verb_iri, '[^/#]+$');

-- The course's overall progress, 0-100 in cmi5's extension: the first configured key
-- found in the result's or the context's extensions.
create or replace temp table xapi_progress as
select s._row, first(coalesce(json_extract_string(s.result, '$.extensions."' || k.key || '"'),
                              json_extract_string(s.statement, '$.context.extensions."' || k.key || '"'))
                     order by k.pos) filter (where coalesce(
                              json_extract_string(s.result, '$.extensions."' || k.key || '"'),
                              json_extract_string(s.statement, '$.context.extensions."' || k.key || '"')) is not null)
       as progress
from xapi_s s cross join (select unnest($progress_keys) as key, generate_subscripts($progress_keys, 1) as pos) k
group by s._row;

-- Unmapped verbs are staged with their IRI: the loader quarantines them ('unknown verb').
create or replace table stg_xapi__progress_events as
select
    s.statement_id                                                 as event_id,
    s.learner_id, s.course_id,
    case when not s.about_course then s.object_id end              as activity_id,
    coalesce(case s.maps_to when 'contribution' then 'commented' else s.maps_to end, s.verb_iri) as verb,
    s.occurred_at,
    case when s.about_course and p.progress is not null then p.progress || '%' end as progress,
    s._file, s._row, s.statement::varchar as _statement
from xapi_s s left join xapi_progress p using (_row)
where coalesce(s.maps_to, '') not in ('enrolment', 'ignore', 'void');

create or replace table stg_xapi__contributions as
select
    s.statement_id                                                 as contribution_id,
    s.learner_id, s.course_id,
    case when regexp_extract(s.verb_iri, '[^/#]+$') = 'commented' then 'comment' else 'forum_post' end as kind,
    coalesce(s.object_name, left(json_extract_string(s.result, '$.response'), 120)) as title,
    case when s.object_id like 'http%' then s.object_id end        as url,
    s.occurred_at                                                  as posted_at,
    null::varchar as n_replies, null::varchar as is_notable,
    s._file, s._row, s.statement::varchar as _statement
from xapi_s s
where s.maps_to = 'contribution';

-- Learners, courses and activities are created by the first statement that names them and
-- never overwritten from statements (which carry none of their other settings).
create or replace table stg_xapi__learners as
select
    s.learner_id,
    arg_max(s.email, s._row)                                       as email,
    split_part(arg_max(s.actor_name, s._row), ' ', 1)              as first_name,
    nullif(trim(substr(arg_max(s.actor_name, s._row),
                       length(split_part(arg_max(s.actor_name, s._row), ' ', 1)) + 1)), '') as last_name,
    null::varchar as locale, null::varchar as timezone, null::varchar as manager_email,
    min(s._file) as _file, min(s._row) as _row
from xapi_s s
where s.learner_id is not null and coalesce(s.maps_to, '') not in ('ignore', 'void')
  and s.learner_id not in (select learner_id from learners)
group by s.learner_id;

create or replace table stg_xapi__courses as
select s.course_id, coalesce(arg_max(s.course_title, s._row), s.course_id) as title,
       case when arg_max(s.course_iri, s._row) like 'http%' then arg_max(s.course_iri, s._row) end as url,
       null::varchar as forum_url, null::varchar as starts_on, null::varchar as ends_on,
       min(s._file) as _file, min(s._row) as _row
from xapi_s s
where s.course_id is not null and coalesce(s.maps_to, '') not in ('ignore', 'void')
  and s.course_id not in (select course_id from courses)
group by s.course_id;

create or replace table stg_xapi__activities as
select s.course_id, s.object_id as activity_id,
       arg_max(s.object_name, s._row)                              as title,
       arg_max(regexp_extract(json_extract_string(s.object_def, '$.type'), '[^/#]+$'), s._row) as kind,
       null::varchar as week, null::varchar as opens_at, null::varchar as due_at,
       null::varchar as weight, null::varchar as is_required,
       case when s.object_id like 'http%' then s.object_id end     as url,
       min(s._file) as _file, min(s._row) as _row
from xapi_s s
where s.course_id is not null and s.object_id is not null and not s.about_course
  and coalesce(s.maps_to, '') not in ('ignore', 'enrolment', 'contribution', 'void')
  and not exists (select 1 from activities a where a.course_id = s.course_id and a.activity_id = s.object_id)
group by s.course_id, s.object_id;

-- An enrolment starts at its 'registered' statement, else at the learner's first statement
-- on the course; a completion of the course itself completes it. What the warehouse
-- already knows of it is kept.
create or replace table stg_xapi__enrolments as
select
    s.learner_id, s.course_id, null::varchar as cohort,
    coalesce(strftime(any_value(e.enrolled_at) at time zone 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ'),
             arg_min(s.occurred_at, try_cast(s.occurred_at as timestamptz))
                 filter (where s.maps_to = 'enrolment'),
             arg_min(s.occurred_at, try_cast(s.occurred_at as timestamptz)))   as enrolled_at,
    case when any_value(e.status) = 'completed' or bool_or(s.about_course and s.maps_to in ('completed', 'passed'))
         then 'completed' else coalesce(any_value(e.status), 'enrolled') end   as status,
    coalesce(strftime(any_value(e.completed_at) at time zone 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ'),
             arg_min(s.occurred_at, try_cast(s.occurred_at as timestamptz))
                 filter (where s.about_course and s.maps_to in ('completed', 'passed'))) as completed_at,
    strftime(any_value(e.withdrawn_at) at time zone 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') as withdrawn_at,
    min(s._file) as _file, min(s._row) as _row
from xapi_s s
left join enrolments e on e.learner_id = s.learner_id and e.course_id = s.course_id
where s.learner_id is not null and s.course_id is not null and coalesce(s.maps_to, '') not in ('ignore', 'void')
group by s.learner_id, s.course_id;

-- Voiding statements: the statement whose id their StatementRef object names is taken
-- back (load_voids.sql removes the event or contribution loaded from it, now or later).
create or replace table stg_xapi__voids as
select
    (s.statement->>'$.object.id')                                    as voided_id,
    s.statement_id                                                 as voiding_id,
    s.occurred_at                                                  as voided_at,
    s._file, s._row,
    case when coalesce((s.statement->>'$.object.objectType'), '') <> 'StatementRef'
           or (s.statement->>'$.object.id') is null
         then 'a voiding statement needs a StatementRef object naming the statement it voids, '
              || 'not ' || coalesce((s.statement->>'$.object.objectType'), 'an Activity') end as _problem,
    s.statement::varchar                                           as _raw
from xapi_s s
where s.maps_to = 'void'
