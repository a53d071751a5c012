-- stg -> progress_events for a file's view on the warehouse file (load_progress_events.sql
-- is the reference, for staging tables and the shared warehouse: same rows loaded, same
-- rows quarantined for the same reasons). What is different is where the typed rows wait
-- for the checks that need the whole load (repeats, the rows' numbers): here, in
-- progress_events itself. The file's one pass types and checks every row and inserts it
-- there, in file order, each marked in `source`: the source's name (kept) or, for a row
-- set aside, its reason and raw row as JSON; the lookups after the pass mark a row already
-- in the warehouse '' and set aside a row without enrolment (its reason, its raw row read
-- again from the file). The load's rows
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

-- The file's one pass (no join: event_typing.sql): each row typed, checked and written in
-- file order, as kept or set aside (with its reason and raw row). Whether its learner is
-- enrolled and whether it is already in the warehouse are looked up below, by row id.
insert into progress_events
    (event_id, learner_id, course_id, activity_id, verb, occurred_at, progress, source, loaded_at)
with /*@include event_typing*/
-- (a row set aside has placeholders where a value is missing: it is deleted below)
select c.event_id, coalesce(c.learner_id, ''), coalesce(c.course_id, ''), c.activity_id,
       coalesce(c.verb, ''), coalesce(c.occurred_at, 'epoch'::timestamptz), c.progress,
       case when c.reason is not null
            then json_object('reason', c.reason, 'raw', to_json(/*@staged*/),
                             'timed', c.occurred_at is not null)::varchar
            else $source end,
       $now
from reasoned c;

-- A view's rows are numbered from its first: the load's first row id is its first row.
create or replace temp table checked_start as
select $first_file::varchar as file, $first_row::bigint - min(rowid) as start
from progress_events where rowid >= $first_event;

-- The second look (as in load_progress_events.sql): rows set aside whose learner, course
-- or verb has spaces around it are checked again with them trimmed (a row then kept is
-- looked for in the warehouse below, with the others).
update progress_events c
set learner_id = r.learner_id, course_id = r.course_id, verb = r.verb,
    source = case when r.reason is not null
                  then json_object('reason', r.reason, 'raw', r.raw, 'timed', r.timed)::varchar
                  else $source end
from (
    select p.id, p.learner_id, p.course_id, p.verb, p.raw, p.timed,
           relance_event_reason(p.learner_id, p.course_id, p.verb,
                                case when p.timed then p.occurred_at end, null,
                                p.occurred_at_text, p.progress, p.progress_text,
                                e.learner_id is not null) as reason
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

-- The lookups the pass does not make (event_typing.sql), on the rows it kept. First the
-- enrolment (the last of the checks): a row without one is looked at again with its
-- learner and course trimmed (the second look above, for rows the pass kept: without
-- spaces in the load's first rows, the pass does not trim them); still without one, it
-- is set aside, and its raw row is read again from the staged rows below, as a repeat's
-- is.
update progress_events c
set learner_id = r.learner_id, course_id = r.course_id,
    source = case when r.enrolled then $source
                  else json_object('reason', relance_event_reason(r.learner_id, r.course_id,
                                                                  c.verb, c.occurred_at, null,
                                                                  null, c.progress, null, false),
                                   'read_again', true)::varchar end
from (
    select p.id, p.learner_id, p.course_id,
           exists (select 1 from enrolments e
                   where e.learner_id = p.learner_id and e.course_id = p.course_id) as enrolled
    -- (an anti join: a third of the CPU of `not exists`, planned as a join on the
    -- load's distinct pairs then a lookup of every row)
    from (select k.rowid as id, trim(k.learner_id) as learner_id, trim(k.course_id) as course_id
          from progress_events k
          anti join enrolments e on e.learner_id = k.learner_id and e.course_id = k.course_id
          where k.rowid >= $first_event and k.source = $source) p
) r
where c.rowid = r.id;

-- Then an event already in the warehouse, by its id or by what it says: marked '' (skipped,
-- not quarantined). (Each lookup a column, outside a CASE: a mark join. When the warehouse
-- had no events before the load, the statement reads nothing: `$first_event > 0` is
-- false before it runs.)
update progress_events c
set source = ''
from (
    select * from (
        select p.rowid as id,
               exists (select 1 from progress_events b
                       where b.rowid < $first_event and b.event_id = p.event_id) as known_id,
               p.event_id is null and exists (
                   select 1 from progress_events b
                   where b.rowid < $first_event
                         and b.learner_id = p.learner_id and b.course_id = p.course_id
                         and b.activity_id is not distinct from p.activity_id
                         and b.verb = p.verb and b.occurred_at = p.occurred_at
                         and b.progress is not distinct from p.progress) as known_event
        from progress_events p
        where p.rowid >= $first_event and p.source = $source and $first_event > 0)
    where known_id or known_event
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
select c.id, c._key,
       case when c.event_id is not null then 'duplicate event in this load: ' || c.event_id
            else 'duplicate event in this load: row ' || f.first.row || ' says the same '
                 || '(learner, course, activity, verb, time and progress)' end as reason
from candidates c
join firsts f on f.identity = c.identity
where {'file': c._file, 'row': c._row, 'key': c._key} <> f.first;

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'progress_events', /*@file*/, /*@row*/,
       json_merge_patch((c.source::json->'raw'), json_object('_row', /*@row*/)),
       (c.source::json->>'reason')
from progress_events c, checked_start o
where c.rowid >= $first_event and c.source <> $source and c.source <> ''
  and (c.source::json->'raw') is not null
order by c.rowid;

-- the raw row of a repeat or of a row without enrolment is read again from the staged
-- rows, for those only
insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'progress_events', s._file, s._row, to_json(s), d.reason
from /*@staging*/ s
join (select _key, reason from repeats
      union all
      select /*@entry*/, (c.source::json->>'reason')
      from progress_events c, checked_start o
      where c.rowid >= $first_event and c.source <> $source and c.source <> ''
        and (c.source::json->>'read_again') is not null) d on d._key = s./*@key*/;

-- how many staged rows the load read, for its report
create or replace temp table staged_rows as
select count(*) as n from progress_events where rowid >= $first_event;

-- the load's rows not kept: set aside, repeated, or already in the warehouse
delete from progress_events
where rowid >= $first_event
  and (source <> $source or rowid in (select id from repeats));

drop table checked_start;
drop table repeats;
drop table repeated_hashes
