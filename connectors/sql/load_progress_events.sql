-- stg -> progress_events, append only. An event is identified by its source's id when it
-- has one (`event_id`), and otherwise by what it says: learner, course, activity, verb,
-- instant and progress (stored with a NULL `event_id`). Events already in the warehouse
-- are skipped, not quarantined: that is what makes reruns incremental. (Before migration
-- 0013 an event without an id was stored with an MD5 of its text as its id: such rows
-- are matched by what they say too, so a rerun adds nothing.)
--
-- Written for tens of millions of rows: one pass over the staged rows (a file's view: the
-- file is parsed once) types and checks every row into `checked`, building the raw JSON
-- only for the rows set aside; local times get their instant from the shift of their
-- hour, not from ICU row by row; the pass has no join (event_typing.sql): the enrolments
-- are looked up afterwards, on `checked`; repeats are found by sorting the rows' 64-bit
-- hashes; the insert anti-joins what is already there. `checked` holds a load's
-- every row in memory (uncompressed), so it keeps only what the steps below read. (A
-- file's view on the warehouse file is loaded by load_progress_events_direct.sql, which
-- keeps no such table: this file is for staging tables and the shared warehouse.)
--
-- The staged rows come as a table with each row's `_file` and `_row`, or as a file
-- connector's view over the file's read. Then the file is the view's, and a row's number
-- is its position in `checked` (kept in file order) from the view's first row on:
-- numbering rows as they are read would take the read to one thread, and the file's name
-- on every row would fill memory for nothing. The fragments say which:
-- `/*@position*/` carries `_file` and `_row` along (or nothing), `/*@file*/` and `/*@row*/`
-- are a row of `checked c`'s (with `checked_start o` in scope), `/*@carry*/` carries the
-- staged row along (columns named `_staged_*`) and `/*@staged*/` makes it a struct, for
-- the raw JSON of the rows set aside only. `/*@entry*/` is a row of `checked c`'s key
-- in the staging, `s./*@key*/` a staged row's (a table's rowid: a table's `_row` may
-- repeat, as when one record of an LMS's answer gives several events; a view's row
-- number). `/*@spaced*/` (true or false) says whether the
-- load's first rows have spaces around their learner, course or verb; `/*@shift*/` is
-- the shift of a local hour (base.py `_hour_shift`).

/*@include event_reason*/

create or replace temp table checked as
with /*@include event_typing*/
select columns(lambda c: not starts_with(c, '_staged_') and c <> 'reason'),
    -- the 64-bit hash of what identifies the event, for the search for repeats below
    case when event_id is not null then hash(event_id)
         else hash(learner_id, course_id, activity_id, verb, occurred_at, progress)
    end as identity_hash,
    -- a row set aside: why, and the row as staged (one column: NULL for the others)
    case when reason is not null then json_object('reason', reason, 'raw', to_json(/*@staged*/)) end
        as rejected
from reasoned;

-- The second look: rows set aside whose learner, course or verb has spaces around it are
-- checked again with them trimmed (when a load's first rows have none, a look for spaces
-- in every row's learner, course and verb costs more than this look at the rows set
-- aside; when they have some, every row is trimmed in the first look, and none is here).
update checked c
set learner_id = r.learner_id, course_id = r.course_id, verb = r.verb,
    rejected = case when r.reason is not null
                    then json_object('reason', r.reason, 'raw', (c.rejected->'raw')) end,
    identity_hash = case when c.event_id is not null then hash(c.event_id)
                         else hash(r.learner_id, r.course_id, c.activity_id, r.verb,
                                   c.occurred_at, c.progress) end
from (
    select p.id, p.learner_id, p.course_id, p.verb,
           relance_event_reason(p.learner_id, p.course_id, p.verb, p.occurred_at, null,
                                p.occurred_at_text, p.progress, p.progress_text,
                                e.learner_id is not null) as reason
    from (select rowid as id, trim(learner_id) as learner_id, trim(course_id) as course_id,
                 trim(verb) as verb, occurred_at, progress,
                 (rejected->'raw'->>'occurred_at') as occurred_at_text,
                 (rejected->'raw'->>'progress') as progress_text
          from checked
          where rejected is not null
            and (relance_padded(learner_id) or relance_padded(course_id)
                 or relance_padded(verb))) p
    left join enrolments e on e.learner_id = p.learner_id and e.course_id = p.course_id
) r
where c.rowid = r.id;

-- The enrolment of each row kept so far, looked up now that the pass is done (the last
-- of the checks, which the pass does not make: event_typing.sql). A row without one is
-- looked at again with its learner and course trimmed (the second look above, for rows
-- the pass kept: without spaces in the load's first rows, the pass does not trim them);
-- still without one, it is set aside, and its raw row is read again from the staged rows
-- (below), as a repeat's is.
update checked c
set learner_id = r.learner_id, course_id = r.course_id,
    rejected = case when not r.enrolled
                    then json_object('reason', relance_event_reason(r.learner_id, r.course_id,
                                                                    c.verb, c.occurred_at, null,
                                                                    null, c.progress, null, false),
                                     'read_again', true) end,
    identity_hash = case when c.event_id is not null then hash(c.event_id)
                         else hash(r.learner_id, r.course_id, c.activity_id, c.verb,
                                   c.occurred_at, c.progress) end
from (
    select p.id, p.learner_id, p.course_id,
           exists (select 1 from enrolments e
                   where e.learner_id = p.learner_id and e.course_id = p.course_id) as enrolled
    -- (an anti join: a third of the CPU of `not exists`, planned as a join on the
    -- load's distinct pairs then a lookup of every row)
    from (select k.rowid as id, trim(k.learner_id) as learner_id, trim(k.course_id) as course_id
          from checked k
          anti join enrolments e on e.learner_id = k.learner_id and e.course_id = k.course_id
          where k.rejected is null) p
) r
where c.rowid = r.id;

-- A view's rows are numbered from its first (rowids count up in insertion order, from 0
-- once committed, from a large base inside the load's transaction: hence the minimum).
create or replace temp table checked_start as
select $first_file::varchar as file, $first_row::bigint - min(rowid) as start from checked;

-- Events said twice in this load: the first (in file order) is kept, the others are set
-- aside with the row they repeat. Their 64-bit hashes repeat: sorted, a repeat is next to
-- what it repeats (a sort of the hashes, where grouping them needed a table of every one
-- that outgrew the memory limit); only rows with those hashes are then grouped by what
-- identifies them (a hash can collide: the identity decides).
create or replace temp table repeated_hashes as
select distinct hash as identity_hash
from (select identity_hash as hash, lag(identity_hash) over (order by identity_hash) as previous
      from checked where rejected is null)
where hash = previous;

create or replace temp table repeats as
with candidates as (
    select /*@file*/ as _file, /*@row*/ as _row, /*@entry*/ as _key, c.event_id,
           -- an event with an id is that id; one without, what it says
           case when c.event_id is not null then to_json({'event_id': c.event_id})
                else to_json({'learner_id': c.learner_id, 'course_id': c.course_id,
                              'activity_id': c.activity_id, 'verb': c.verb,
                              'occurred_at': c.occurred_at, 'progress': c.progress})
           end as identity
    from checked c
    cross join checked_start o
    where c.rejected is null
      and c.identity_hash in (select identity_hash from repeated_hashes)
),
firsts as (
    select identity, min({'file': _file, 'row': _row, 'key': _key}) as first
    from candidates group by identity having count(*) > 1
)
select c._key,
       case when c.event_id is not null then 'duplicate event in this load: ' || c.event_id
            else 'duplicate event in this load: row ' || f.first.row || ' says the same '
                 || '(learner, course, activity, verb, time and progress)' end as reason
from candidates c
join firsts f on f.identity = c.identity
where {'file': c._file, 'row': c._row, 'key': c._key} <> f.first;

-- (a view's raw row lacks its `_row`, which it gets here, last, as a table's has it)
insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'progress_events', /*@file*/, /*@row*/,
       json_merge_patch((c.rejected->'raw'), json_object('_row', /*@row*/)), (c.rejected->>'reason')
from checked c, checked_start o where c.rejected is not null and (c.rejected->'raw') is not null;

-- the raw row of a repeat or of a row without enrolment is read again from the staged
-- rows, for those only (when there are none, the join has nothing to look up and the
-- staged rows are not read)
insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'progress_events', s._file, s._row, to_json(s), d.reason
from /*@staging*/ s
join (select _key, reason from repeats
      union all
      select /*@entry*/, (c.rejected->>'reason') from checked c, checked_start o
      where (c.rejected->>'read_again') is not null) d on d._key = s./*@key*/;

insert into progress_events
    (event_id, learner_id, course_id, activity_id, verb, occurred_at, progress, source, loaded_at)
with placed as (
    select c.event_id, c.learner_id, c.course_id, c.activity_id, c.verb, c.occurred_at,
           c.progress
    from checked c
    cross join checked_start o
    anti join repeats d on d._key = /*@entry*/
    where c.rejected is null
)
select c.*, $source, $now
from placed c
where (c.event_id is null or not exists (select 1 from progress_events p where p.event_id = c.event_id))
  and (c.event_id is not null or not exists (
        select 1 from progress_events p
        where p.learner_id = c.learner_id and p.course_id = c.course_id
          and p.activity_id is not distinct from c.activity_id and p.verb = c.verb
          and p.occurred_at = c.occurred_at and p.progress is not distinct from c.progress));

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from checked;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked;
drop table checked_start;
drop table repeats;
drop table repeated_hashes
