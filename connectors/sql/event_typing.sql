-- The staged events typed and checked, one row each (what `reasoned` holds: typed values,
-- the staged row carried along as `_staged_*`, and `reason`, NULL for a row kept): the
-- common table expressions of the events' loads' first pass (load_progress_events*.sql),
-- included after their `with`.
staged as (
    select /*@position*/ /*@carry*/, s.learner_id, s.course_id, s.activity_id, s.verb,
           s.occurred_at, s.progress, s.event_id,
           -- Spaces around a value: one look at the row, then its values are trimmed only
           -- if it needs it. The ids stored as read are always looked at. Learner, course
           -- and verb are only if the first rows of the load have spaces around them
           -- (`/*@spaced*/`): otherwise a row with spaces around them fails its checks,
           -- and only those rows get a second look, trimmed (below). occurred_at and
           -- progress are read by functions that allow spaces around them.
           relance_padded(s.activity_id) or relance_padded(s.event_id)
             or (/*@spaced*/ and (relance_padded(s.learner_id) or relance_padded(s.course_id)
                                  or relance_padded(s.verb))) as padded
    from /*@staging*/ s
),
trimmed as (
    select columns('^_(file|row|key)$|^_staged_'), occurred_at, progress::varchar as progress,
           case when padded then trim(learner_id) else learner_id end   as learner_id,
           case when padded then trim(course_id) else course_id end     as course_id,
           -- lower() copies every string: only a verb not already one of the known is
           case when padded then lower(trim(verb)) when relance_known_verb(verb) then verb
                else lower(verb) end                                    as verb,
           nullif(case when padded then trim(activity_id) else activity_id end, '') as activity_id,
           nullif(case when padded then trim(event_id) else event_id end, '') as event_id
    from staged
),
read as (
    -- A time written in one of these formats has no offset (strptime takes the whole
    -- text): most rows are read here, with no look for an offset. The others are looked
    -- at one by one below: an offset, or another ISO form (fractions of a second ...).
    select *, try_strptime(occurred_at, ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M',
                                         '%Y-%m-%dT%H:%M:%S', '%Y-%m-%dT%H:%M', '%Y-%m-%d']
                                        || $datetime_formats) as wall_clock,
        case when contains(progress, '%') then relance_num(replace(progress, '%', '')) / 100
             else coalesce(try_cast(progress as double), relance_num(progress)) end as number
    from trimmed
),
typed as (
    select
        columns('^_(file|row|key)$|^_staged_'), s.event_id, s.learner_id, s.course_id,
        s.activity_id, s.verb,
        -- with an offset: the instant it says; without: the wall-clock time, placed in
        -- the source's timezone by the insert below
        case when s.wall_clock is null and relance_has_offset(trim(s.occurred_at))
             then try_cast(trim(s.occurred_at) as timestamptz) end      as occurred_utc,
        case when s.wall_clock is not null then s.wall_clock
             when not relance_has_offset(trim(s.occurred_at))
             then try_cast(trim(s.occurred_at) as timestamp) end        as occurred_local,
        case
            when contains(s.progress, '%') or $progress_scale = 'share' then s.number
            when $progress_scale = 'percent' then s.number / 100
            when s.number > 1 then s.number / 100
            else s.number
        end                                                         as progress,
        s.progress as progress_text, s.occurred_at as occurred_at_text
    from read s
),
reasoned as (
    select t.* exclude (progress_text, occurred_at_text),
        relance_event_reason(t.learner_id, t.course_id, t.verb, t.occurred_utc, t.occurred_local,
                             t.occurred_at_text, t.progress, t.progress_text,
                             exists (select 1 from enrolments e where e.learner_id = t.learner_id
                                                              and e.course_id = t.course_id)) as reason
    -- a lookup, not a join: the planner may swap a join's sides (a small file against a
    -- large enrolments table, or a PostgreSQL table it cannot size), which emits the rows
    -- with no enrolment last, and a view's rows are numbered by their place in this table
    from typed t
)
