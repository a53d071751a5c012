-- The staged events typed and checked, one row each (what `reasoned` holds: typed values,
-- the instant `occurred_at`, the staged row carried along as `_staged_*`, and `reason`,
-- NULL for a row kept so far): the common table expressions of the events' loads' first
-- pass (load_progress_events*.sql), included after their `with`.
--
-- No join, no lookup of a table, no subquery: a file's rows are numbered by their place
-- in what this pass writes (DuckDB keeps a scan's order through projections and filters),
-- and a join in the pass, even a lookup (`exists`, a mark join) in a table of ten rows,
-- lets DuckDB write whole blocks of rows elsewhere from about a million rows on (rows 2,
-- 500,001 and 1,000,000 of a file were reported as 2, 179,035 and 518,910;
-- duckdb/duckdb#24398). So what needs a table is looked up after the pass, on the rows it
-- wrote, by row id: whether the learner is enrolled (the last check: the pass checks the
-- rest), whether the event is already in the warehouse. A local time's instant needs no
-- table: `/*@shift*/` is the shift of its hour, written out as constants (base.py
-- `_hour_shift`).
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
        -- the source's timezone below
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
hours as (
    select *, epoch_us(occurred_local) // 3600000000 as hour_index from typed
),
reasoned as (
    select t.* exclude (occurred_utc, occurred_local, progress_text, occurred_at_text,
                       hour_index),
        -- with an offset: the instant it says; without: the wall-clock time in the
        -- source's timezone, by the shift of its hour (from ICU, once per hour of the
        -- years around the load's: see relance_local_hours), or from timezone() for a
        -- time outside those years or in an hour whose offset changes
        coalesce(t.occurred_utc, make_timestamptz(epoch_us(t.occurred_local) + /*@shift*/),
                 timezone($timezone, t.occurred_local))                  as occurred_at,
        relance_event_reason(t.learner_id, t.course_id, t.verb, t.occurred_utc, t.occurred_local,
                             t.occurred_at_text, t.progress, t.progress_text, true) as reason
    from hours t
)