-- A CSV file's rejected rows (rejects.sql: rejected_rows) go to quarantine with their line
-- as written and why, once the entity's loader has read the file's view, in its
-- transaction: one bad row does not stop a sync, nor goes missing. What the loader set
-- aside from the same file gets back its row number in the file (its `row_number`, its
-- raw row's `_row`, and a duplicate's "row N says the same"), which the read shifted.

-- (CASE branches may be evaluated for every row: hence try_cast)
update quarantine set
    row_number = relance_unshifted(row_number),
    raw = case when try_cast((raw->>'_row') as bigint) is not null
               then json_merge_patch(raw, json_object(
                        '_row', relance_unshifted(try_cast((raw->>'_row') as bigint))))
               else raw end,
    reason = case when regexp_matches(reason, '^duplicate event in this load: row [0-9]+ ')
                  then 'duplicate event in this load: row '
                       || relance_unshifted(try_cast(regexp_extract(
                              reason, '^duplicate event in this load: row ([0-9]+) ', 1) as bigint))
                       || regexp_replace(reason, '^duplicate event in this load: row [0-9]+', '')
                  else reason end
where load_id = $load_id and entity = $entity and source_file = $file
  and exists (select 1 from rejected_shift);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, $entity, $file, row_number,
       json_object('_row', row_number, 'line', csv_line), reason
from rejected_rows;

create or replace temp table rejected_count as select count(*) as n from rejected_rows;

drop macro relance_unshifted;
drop table rejected_shift;
drop table rejected_rows
