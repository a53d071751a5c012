-- stg -> progress_events for a file's view on the warehouse file (load_progress_events.sql
-- is the reference, for staging tables and the shared warehouse: same rows loaded, same
-- rows quarantined for the same reasons). What is different is where the typed rows wait
-- for the checks that need the whole load (repeats, the rows' numbers): here, in
-- progress_events itself. The file's one pass types and checks every row and inserts it
-- there, in file order, each marked in `source`: the source's name (kept), '' (already in
-- the warehouse) or, for a row set aside, its reason and raw row as JSON. The load's rows
-- are those from row id `$first_event` on (the table's rows before the load are below);
-- the rows not kept are deleted at the end, inside the load's transaction, so none is
-- ever seen. Why: a work table of every typed row (`checked`, uncompressed, about 88
-- bytes a row) outgrows the 2 GB memory limit at 50M rows and spills to disk, and every
-- later statement reads it back; progress_events is written compressed, once (issue 19).
--
-- Markers as in load_progress_events.sql: `/*@file*/`, `/*@row*/` and `/*@entry*/` are a
-- row `c`'s file, number and key (with `checked_start o` in scope): its row id's place
-- among the load's rows, from the view's first row on.

/*@include event_reason*/

-- A local time's instant: the shift of its hour (see relance_local_hours), from ICU twice
-- per hour rather than once per row, for every hour of the five years before the load's
-- year to the two after (the load's own hours are not known before its one pass; a time
-- outside gets its instant from timezone(), row by row, the same). Five years, not twenty:
-- the table is made at every load, and a daily sync of a few hundred events (a season
-- simulation runs a hundred on one connection) paid 60 ms for twenty-three years of
-- hours, 20 ms for eight; exports are of current courses. The hours are looked
-- up by two lookups (`exists`) in the hours of the two shifts a timezone has (standard and
-- summer time: an hour of a zone whose offset took other values in those years gets its
-- instant from timezone() too); not by a join, whose sides the planner may swap, which
-- emits the rows out of file order; nor from a list of the shifts, copied for every
-- 2,048 rows.
create or replace temp table local_hours as
select epoch_us(hour) // 3600000000 as hour_index, shift_us
from relance_local_hours((select list(h) from range(make_timestamp(year($now) - 5, 1, 1, 0, 0, 0),
                                                    make_timestamp(year($now) + 3, 1, 1, 0, 0, 0),
                                                    interval 1 hour) t(h)), $timezone);
create or replace temp table local_shifts as
select min(shift_us) as low, max(shift_us) as high from local_hours;
create or replace temp table low_hours as
select hour_index from local_hours where shift_us = (select low from local_shifts);
create or replace temp table high_hours as
select hour_index from local_hours where shift_us = (select high from local_shifts);

insert into progress_events
    (event_id, learner_id, course_id, activity_id, verb, occurred_at, progress, source, loaded_at)
with /*@include event_typing*/,
hours as (
    select r.*, epoch_us(r.occurred_local) // 3600000000 as hour_index from reasoned r
),
shifted as (
    -- (lookups of a column, outside a CASE: each a mark join, in file order)
    select r.*,
        exists (select 1 from low_hours h where h.hour_index = r.hour_index) as low_hour,
        exists (select 1 from high_hours h where h.hour_index = r.hour_index) as high_hour
    from hours r
),
placed as (
    select r.*,
        coalesce(r.occurred_utc,
                 make_timestamptz(epoch_us(r.occurred_local) + case when r.low_hour then l.low
                                                                    when r.high_hour then l.high end),
                 timezone($timezone, r.occurred_local)) as occurred_at
    from shifted r
    cross join local_shifts l
)
-- (a row set aside has placeholders where a value is missing: it is deleted below)
select c.event_id, coalesce(c.learner_id, ''), coalesce(c.course_id, ''), c.activity_id,
       coalesce(c.verb, ''), coalesce(c.occurred_at, 'epoch'::timestamptz), c.progress,
       case
           when c.reason is not null
               then json_object('reason', c.reason, 'raw', to_json(/*@staged*/),
                                'timed', c.occurred_at is not null)::varchar
           -- an event already in the warehouse: by its id, or by what it says
           when c.event_id is not null and exists (select 1 from progress_events p
                                                    where p.event_id = c.event_id) then ''
           when c.event_id is null and exists (
                select 1 from progress_events p
                where p.learner_id = c.learner_id and p.course_id = c.course_id
                  and p.activity_id is not distinct from c.activity_id and p.verb = c.verb
                  and p.occurred_at = c.occurred_at
                  and p.progress is not distinct from c.progress) then ''
           else $source
       end,
       $now
from placed c;

-- A view's rows are numbered from its first: the load's first row id is its first row.
create or replace temp table checked_start as
select $first_file::varchar as file, $first_row::bigint - min(rowid) as start
from progress_events where rowid >= $first_event;

-- The second look (as in load_progress_events.sql): rows set aside whose learner, course
-- or verb has spaces around it are checked again with them trimmed; a row then kept is
-- looked for in the warehouse's rows from before the load.
update progress_events c
set learner_id = r.learner_id, course_id = r.course_id, verb = r.verb,
    source = case when r.reason is not null
                  then json_object('reason', r.reason, 'raw', r.raw, 'timed', r.timed)::varchar
                  when r.present then '' else $source end
from (
    select p.id, p.learner_id, p.course_id, p.verb, p.raw, p.timed,
           relance_event_reason(p.learner_id, p.course_id, p.verb,
                                case when p.timed then p.occurred_at end, null,
                                p.occurred_at_text, p.progress, p.progress_text,
                                e.learner_id is not null) as reason,
           case when p.event_id is not null
                then exists (select 1 from progress_events b
                             where b.rowid < $first_event and b.event_id = p.event_id)
                else exists (select 1 from progress_events b
                             where b.rowid < $first_event and b.learner_id = p.learner_id
                               and b.course_id = p.course_id
                               and b.activity_id is not distinct from p.activity_id
                               and b.verb = p.verb and b.occurred_at = p.occurred_at
                               and b.progress is not distinct from p.progress)
           end as present
    from (select rowid as id, event_id, trim(learner_id) as learner_id,
                 trim(course_id) as course_id, activity_id, trim(verb) as verb, occurred_at,
                 progress, (source::json->'raw') as raw,
                 (source::json->>'timed')::boolean as timed,
                 (source::json->'raw'->>'occurred_at') as occurred_at_text,
                 (source::json->'raw'->>'progress') as progress_text
          from progress_events
          where rowid >= $first_event and source <> $source and source <> ''
            and (relance_padded(learner_id) or relance_padded(course_id)
                 or relance_padded(verb))) p
    left join enrolments e on e.learner_id = p.learner_id and e.course_id = p.course_id
) r
where c.rowid = r.id;

-- Events said twice in this load (as in load_progress_events.sql, the rows already in the
-- warehouse among them): the first in file order is kept, the others set aside. (A window
-- partitioned by the hash's first byte, for a sort on every core, took 2-4x the CPU.)
create or replace temp table repeated_hashes as
select distinct hash as identity_hash
from (select hash, lag(hash) over (order by hash) as previous
      from (select case when event_id is not null then hash(event_id)
                        else hash(learner_id, course_id, activity_id, verb, occurred_at, progress)
                   end as hash
            from progress_events
            where rowid >= $first_event and (source = $source or source = '')))
where hash = previous;

create or replace temp table repeats as
with candidates as (
    select c.rowid as id, /*@file*/ as _file, /*@row*/ as _row, /*@entry*/ as _key, c.event_id,
           case when c.event_id is not null then to_json({'event_id': c.event_id})
                else to_json({'learner_id': c.learner_id, 'course_id': c.course_id,
                              'activity_id': c.activity_id, 'verb': c.verb,
                              'occurred_at': c.occurred_at, 'progress': c.progress})
           end as identity
    from progress_events c
    cross join checked_start o
    where c.rowid >= $first_event and (c.source = $source or c.source = '')
      and (case when c.event_id is not null then hash(c.event_id)
                else hash(c.learner_id, c.course_id, c.activity_id, c.verb, c.occurred_at, c.progress)
           end) in (select identity_hash from repeated_hashes)
),
firsts as (
    select identity, min({'file': _file, 'row': _row, 'key': _key}) as first
    from candidates group by identity having count(*) > 1
)
select c.id, c._key, c.event_id, f.first
from candidates c
join firsts f on f.identity = c.identity
where {'file': c._file, 'row': c._row, 'key': c._key} <> f.first;

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'progress_events', /*@file*/, /*@row*/,
       json_merge_patch((c.source::json->'raw'), json_object('_row', /*@row*/)),
       (c.source::json->>'reason')
from progress_events c, checked_start o
where c.rowid >= $first_event and c.source <> $source and c.source <> ''
order by c.rowid;

-- a repeat's raw row is read again from the staged rows, for the repeats only
insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'progress_events', s._file, s._row, to_json(s),
       case when d.event_id is not null then 'duplicate event in this load: ' || d.event_id
            else 'duplicate event in this load: row ' || d.first.row || ' says the same '
                 || '(learner, course, activity, verb, time and progress)' end
from /*@staging*/ s
join repeats d on d._key = s./*@key*/;

-- how many staged rows the load read, for its report
create or replace temp table staged_rows as
select count(*) as n from progress_events where rowid >= $first_event;

-- the load's rows not kept: set aside, repeated, or already in the warehouse
delete from progress_events
where rowid >= $first_event
  and (source <> $source or rowid in (select id from repeats));

drop table checked_start;
drop table local_hours;
drop table local_shifts;
drop table low_hours;
drop table high_hours;
drop table repeats;
drop table repeated_hashes
