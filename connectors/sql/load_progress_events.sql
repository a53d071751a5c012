-- stg -> progress_events, append only. An event without an id gets a deterministic one
-- (a hash of what it says), so reloading the same export adds nothing. Events already in
-- the warehouse are skipped, not quarantined: that is what makes reruns incremental.
--
-- Written for tens of millions of rows: one pass over the staged rows (a file's view: the
-- file is parsed once) types and checks every row, building the raw JSON only for the
-- rows set aside; duplicates are found by aggregation rather than a window over the whole
-- load; local times get their timezone once per hour of the load, not once per row; the
-- insert anti-joins what is already there.
-- The staged rows come as a table with each row's `_file` and `_row`, or as a file
-- connector's view over the file's read: then `/*@file*/` and `/*@row*/` are NULL, the
-- file is the view's, and a row's number is its position in `checked` (kept in file
-- order) from the view's first row on. Numbering rows as they are read would take the
-- read to one thread; the file's name on every row would fill memory for nothing.
-- `/*@carry*/` carries the staged row along (columns named `_staged_*`) and
-- `/*@staged*/` makes it a struct, for the raw JSON of the rows set aside only.
create or replace temp table checked as
with written as (
    -- what the row says, as one text: what an event without an id is identified by
    select /*@file*/ as _file, /*@row*/ as _row, /*@carry*/, s.learner_id, s.course_id,
           s.activity_id, lower(s.verb) as verb, s.occurred_at, s.progress, s.event_id,
           concat_ws('|', s.learner_id, s.course_id, s.activity_id, lower(s.verb),
                     s.occurred_at, s.progress) as said
    from /*@staging*/ s
),
padded as (
    -- a value with spaces around it puts one at either end of `said` or beside a `|`:
    -- one look at `said` instead of two at each value
    select *, starts_with(said, ' ') or suffix(said, ' ') or contains(said, ' |')
              or contains(said, '| ') as padded
    from written
),
trimmed as (
    -- each text trimmed once, if it needs it
    select _file, _row, columns('^_staged_'),
           case when padded then trim(learner_id) else learner_id end  as learner_id,
           case when padded then trim(course_id) else course_id end    as course_id,
           case when padded then trim(activity_id) else activity_id end as activity_id,
           case when padded then trim(verb) else verb end              as verb,
           case when padded then trim(occurred_at) else occurred_at end as occurred_at,
           case when padded then trim(progress) else progress end      as progress,
           case when padded then concat_ws('|', trim(learner_id), trim(course_id),
                   trim(activity_id), trim(verb), trim(occurred_at), trim(progress))
                else said end                                           as said,
           nullif(relance_trim(event_id), '')                           as event_id
    from padded
),
offsets as (
    select *, relance_has_offset(occurred_at) as has_offset from trimmed
),
typed as (
    select
        s._file, s._row, columns('^_staged_'), s.learner_id, s.course_id,
        nullif(s.activity_id, '')                                   as activity_id,
        s.verb,
        -- with an offset: the instant it says; without: the wall-clock time, placed in
        -- the source's timezone by the insert below
        case when s.has_offset then try_cast(s.occurred_at as timestamptz) end as occurred_utc,
        case when not s.has_offset then relance_local_ts(s.occurred_at, $datetime_formats) end
                                                                    as occurred_local,
        case
            when s.progress = '' or s.progress is null then null
            when contains(s.progress, '%') then relance_num(replace(s.progress, '%', '')) / 100
            when $progress_scale = 'percent' then relance_num(s.progress) / 100
            when $progress_scale = 'share' then relance_num(s.progress)
            when relance_num(s.progress) > 1 then relance_num(s.progress) / 100
            else relance_num(s.progress)
        end                                                         as progress,
        s.progress as progress_text, s.occurred_at as occurred_at_text,
        coalesce(s.event_id, md5(s.said))                           as event_id
    from offsets s
),
reasoned as (
    select t.* exclude (progress_text, occurred_at_text),
        case
            when relance_blank(t.learner_id) then 'missing learner_id'
            when relance_blank(t.course_id) then 'missing course_id'
            when relance_blank(t.verb) then 'missing verb'
            when t.verb not in ('accessed', 'progressed', 'completed', 'submitted', 'passed', 'failed', 'commented')
                then 'unknown verb: ' || t.verb || ' (expected accessed, progressed, completed, submitted, passed, failed or commented)'
            when t.occurred_utc is null and t.occurred_local is null
                then 'unreadable or missing occurred_at: ' || coalesce(t.occurred_at_text, '')
            when not relance_blank(t.progress_text) and (t.progress is null or t.progress not between 0 and 1)
                then 'progress must be a share 0-1 or a percentage: ' || t.progress_text
            when e.learner_id is null then 'unknown enrolment: learner ' || t.learner_id || ' on course ' || t.course_id
        end as reason
    from typed t
    left join enrolments e on e.learner_id = t.learner_id and e.course_id = t.course_id
)
select columns(lambda c: not starts_with(c, '_staged_')),
    -- the id's 64-bit hash, for the duplicate search below (computed once)
    hash(event_id) as event_hash,
    case when reason is not null then to_json(/*@staged*/) end as raw
from reasoned;

-- A row's file and number: as staged, or, for a view's rows, the view's file and the
-- row's position in checked (rowids count up in insertion order, from 0 once committed,
-- from a large base inside the load's transaction: hence the minimum).
create or replace temp table checked_start as
select $first_file::varchar as file, $first_row::bigint - min(rowid) as start from checked;

-- the load's local hours in UTC (see relance_local_hours)
create or replace temp table local_hours as
select * from relance_local_hours((select list(distinct date_trunc('hour', occurred_local))
                                   from checked where occurred_local is not null), $timezone);

-- events said twice in this load: the first (in file order) is kept. Found among the
-- few rows whose 64-bit hash repeats (an integer aggregation), not by grouping every id.
create or replace temp table repeated as
select c.event_id, min({'file': coalesce(c._file, o.file), 'row': coalesce(c._row, c.rowid + o.start)}) as first
from checked c, checked_start o
where c.reason is null
  and c.event_hash in (select event_hash from checked where reason is null
                       group by all having count(*) > 1)
group by c.event_id
having count(*) > 1;

-- (a view's raw row lacks its `_row`, which it gets here, last, as a table's has it)
insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'progress_events', coalesce(c._file, o.file), coalesce(c._row, c.rowid + o.start),
       json_merge_patch(c.raw, json_object('_row', coalesce(c._row, c.rowid + o.start))), c.reason
from checked c, checked_start o where c.reason is not null;

-- a repeat's raw row is read again from the staged rows, for the repeats only (when
-- there are none, the join has nothing to look up and the staged rows are not read)
create or replace temp table repeats as
select coalesce(c._file, o.file) as _file, coalesce(c._row, c.rowid + o.start) as _row, c.event_id
from checked c
cross join checked_start o
join repeated r on r.event_id = c.event_id
               and r.first <> {'file': coalesce(c._file, o.file), 'row': coalesce(c._row, c.rowid + o.start)}
where c.reason is null;

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'progress_events', s._file, s._row, to_json(s),
       'duplicate event in this load: ' || d.event_id
from /*@staging*/ s
join repeats d on d._file = s._file and d._row = s._row;

insert into progress_events
    (event_id, learner_id, course_id, activity_id, verb, occurred_at, progress, source, loaded_at)
select c.event_id, c.learner_id, c.course_id, c.activity_id, c.verb,
       coalesce(c.occurred_utc, make_timestamptz(epoch_us(c.occurred_local) + h.shift_us),
                timezone($timezone, c.occurred_local)),
       c.progress, $source, $now
from checked c
cross join checked_start o
left join local_hours h on h.hour = date_trunc('hour', c.occurred_local)
anti join repeats d on d._file = coalesce(c._file, o.file) and d._row = coalesce(c._row, c.rowid + o.start)
where c.reason is null
  and not exists (select 1 from progress_events p where p.event_id = c.event_id);

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked;
drop table checked_start;
drop table local_hours;
drop table repeats;
drop table repeated
