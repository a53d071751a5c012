-- stg -> voids: progress events and contributions their source took back (xAPI: a
-- statement voiding another). Runs after every other entity of the load, and at every
-- load of a source that stages voids, even with none new: this source's events and
-- contributions named by any of its voids are removed, whether loaded by an earlier
-- load, by this one (a target read with its void, or read again after an interrupted
-- sync), or by a later one (a void read before its target: the LRS may store them in
-- either order). Deleting, rather than flagging, keeps every reader of progress_events
-- (engine, views, digests) right without a filter to forget; the void keeps the rows.
create or replace temp table checked as
select
    s._file, s._row, s./*@key*/ as _key,
    relance_trim(s.voided_id)                                      as voided_id,
    relance_trim(s.voiding_id)                                     as voiding_id,
    relance_ts(relance_trim(s.voided_at), $timezone, $datetime_formats) as voided_at,
    v.voiding_id                                                   as voided_before_by,
    case
        when relance_blank(s.voided_id) then 'missing voided_id'
        when relance_blank(s.voiding_id) then 'missing voiding_id'
        -- xAPI: a voiding statement cannot itself be voided
        when relance_trim(s.voided_id) in (select voiding_id from voids where source = $source)
          or relance_trim(s.voided_id) in (select relance_trim(voiding_id) from /*@staging*/)
            then 'voids a void (' || relance_trim(s.voided_id) || '), which cannot be undone'
        when v.voiding_id is not null and v.voiding_id <> relance_trim(s.voiding_id)
            then 'already voided by ' || v.voiding_id
    end                                                            as reason
from /*@staging*/ s
left join voids v on v.source = $source and v.voided_id = relance_trim(s.voided_id);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'voids', c._file, c._row, to_json(s), c.reason
from checked c
join /*@staging*/ s on s./*@key*/ = c._key
where c.reason is not null;

-- a void read again (an interrupted sync resumed) adds nothing; of two voids of one
-- target in one load, the first stands
insert into voids (source, voided_id, voiding_id, voided_at, load_id, loaded_at)
select $source, voided_id, voiding_id, voided_at, $load_id, $now
from checked
where reason is null and voided_before_by is null
qualify row_number() over (partition by voided_id order by voided_at nulls last, _row) = 1;

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'voids', c._file, c._row, to_json(s), 'already voided by ' || v.voiding_id
from checked c
join voids v on v.source = $source and v.voided_id = c.voided_id
join /*@staging*/ s on s./*@key*/ = c._key
where c.reason is null and c.voided_before_by is null and v.voiding_id <> c.voiding_id;

-- what is taken back now
create or replace temp table voided_rows as
select v.voided_id, 'progress_events' as entity, to_json(p) as row,
       p.learner_id, p.course_id, p.activity_id, p.verb
from voids v
join progress_events p on p.source = v.source and p.event_id = v.voided_id
where v.source = $source
union all
select v.voided_id, 'contributions', to_json(c), c.learner_id, c.course_id, null, null
from voids v
join contributions c on c.source = v.source and c.contribution_id = v.voided_id
where v.source = $source;

-- the first removal is the one recorded (a target read again is the same row). A void
-- applied now is written again whole rather than updated: DuckDB's postgres extension
-- sends an UPDATE's new values to PostgreSQL as text, which it refuses for the json
-- column `removed` (the shared warehouse).
create or replace temp table voids_applied as
select v.source, v.voided_id, v.voiding_id, v.voided_at, v.load_id,
       $now as applied_at, $load_id as applied_load_id, r.removed, v.loaded_at
from voids v
join (
    select voided_id,
           json_object('progress_events', to_json(coalesce(list(row) filter (where entity = 'progress_events'), []::json[])),
                       'contributions', to_json(coalesce(list(row) filter (where entity = 'contributions'), []::json[]))) as removed
    from voided_rows
    group by voided_id
) r on r.voided_id = v.voided_id
where v.source = $source and v.applied_at is null;

delete from voids
where source = $source and voided_id in (select voided_id from voids_applied);

insert into voids (source, voided_id, voiding_id, voided_at, load_id, applied_at,
                   applied_load_id, removed, loaded_at)
select source, voided_id, voiding_id, voided_at, load_id, applied_at, applied_load_id,
       removed, loaded_at
from voids_applied;

delete from progress_events
where source = $source
  and event_id in (select voided_id from voided_rows where entity = 'progress_events');

delete from contributions
where source = $source
  and contribution_id in (select voided_id from voided_rows where entity = 'contributions');

-- A voided completion of the course itself reopens the enrolment it completed, unless
-- another completion of the course remains.
update enrolments e set status = 'enrolled', completed_at = null, loaded_at = $now
where e.source = $source and e.status = 'completed'
  and exists (select 1 from voided_rows r
              where r.entity = 'progress_events' and r.activity_id is null
                and r.verb in ('completed', 'passed')
                and r.learner_id = e.learner_id and r.course_id = e.course_id)
  and not exists (select 1 from progress_events p
                  where p.learner_id = e.learner_id and p.course_id = e.course_id
                    and p.activity_id is null and p.verb in ('completed', 'passed'));

-- the learners who lost events: summarize.sql recomputes their summaries after the load
create temp table if not exists summary_stale (learner_id varchar, course_id varchar);
insert into summary_stale
select distinct learner_id, course_id from voided_rows where entity = 'progress_events';

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from checked;

drop table checked;
drop table voided_rows;
drop table voids_applied
