-- A CSV file's rejected rows (rejects.sql: rejected_rows) go to quarantine with their line
-- as written and why, once the entity's loader has read the file's view, in its
-- transaction: one bad row does not stop a sync, nor goes missing. What the loader set
-- aside from the same file gets back its row number in the file (its `row_number`, its
-- raw row's `_row`, and a duplicate's "row N says the same"), which the read shifted.

-- Rewritten whole rather than updated: on the shared warehouse the postgres extension sends
-- an UPDATE's new values as text, which PostgreSQL refuses for the json column `raw`
-- (quarantine has no key, so a delete and an insert in this transaction are the update).
-- (CASE branches may be evaluated for every row: hence try_cast)
create or replace temp table quarantine_unshifted as
select load_id, source, entity, source_file,
    relance_unshifted(row_number) as row_number,
    case when try_cast((raw->>'_row') as bigint) is not null
         then json_merge_patch(raw, json_object(
                  '_row', relance_unshifted(try_cast((raw->>'_row') as bigint))))
         else raw end as raw,
    case when regexp_matches(reason, '^duplicate event in this load: row [0-9]+ ')
         then 'duplicate event in this load: row '
              || relance_unshifted(try_cast(regexp_extract(
                     reason, '^duplicate event in this load: row ([0-9]+) ', 1) as bigint))
              || regexp_replace(reason, '^duplicate event in this load: row [0-9]+', '')
         else reason end as reason,
    quarantined_at
from quarantine
where load_id = $load_id and entity = $entity and source_file = $file
  and exists (select 1 from rejected_shift);

delete from quarantine
where load_id = $load_id and entity = $entity and source_file = $file
  and exists (select 1 from rejected_shift);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason,
                        quarantined_at)
select load_id, source, entity, source_file, row_number, raw, reason, quarantined_at
from quarantine_unshifted;

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, $entity, $file, row_number,
       json_object('_row', row_number, 'line', csv_line), reason
from rejected_rows;

create or replace temp table rejected_count as select count(*) as n from rejected_rows;

drop macro relance_unshifted;
drop table rejected_shift;
drop table quarantine_unshifted;
drop table rejected_rows
