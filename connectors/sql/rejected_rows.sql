-- Rows of a CSV file that DuckDB's read could not split into the header's columns (more
-- or fewer values, a stray quote, bytes that are not UTF-8), which the read set aside in
-- its rejects table (`store_rejects`) while the loader read the rest: each goes to
-- quarantine with its line as written and why, so that one bad row does not stop a
-- sync, nor goes missing. Run after the entity's loader, in its transaction.
--
-- The read numbers the rows it keeps: a row after k rejected ones was numbered k rows too
-- early in what the loader set aside (its row number, its raw row's `_row`, and a
-- duplicate's "row N says the same"). A rejected row is at row `$rows_before + line - 1`
-- (line 1 is the header; a file's appended part starts after `$rows_before` rows).
create or replace temp table rejected_rows as
select distinct on (line)
    $rows_before + line - 1                                         as row_number,
    error_type::varchar                                             as error_type,
    csv_line,
    error_message
from /*@rejects*/
order by line;

-- rows kept before the j-th rejected one (rows_before included): a kept row numbered k is
-- after every rejected row whose `kept_before` is below k
create or replace temp table rejected_shift as
select row_number - row_number() over (order by row_number) as kept_before
from rejected_rows;

create or replace temp macro relance_unshifted(k) as
    k + (select count(*) from rejected_shift where kept_before < k);

-- (CASE branches may be evaluated for every row: hence try_cast)
update quarantine set
    row_number = relance_unshifted(row_number),
    raw = case when try_cast(raw->>'_row' as bigint) is not null
               then json_merge_patch(raw, json_object(
                        '_row', relance_unshifted(try_cast(raw->>'_row' as bigint))))
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
       json_object('_row', row_number, 'line', csv_line),
       case error_type
           when 'MISSING COLUMNS' then 'fewer values than the header has columns (' || error_message
                || '): a value left out, or a delimiter missing'
           when 'TOO MANY COLUMNS' then 'more values than the header has columns (' || error_message
                || '): a value holding the delimiter must be quoted with "'
           when 'UNQUOTED VALUE' then 'a quote inside a value that is not quoted (' || error_message
                || '): quote the whole value with " and double the quotes in it'
           when 'INVALID ENCODING' then 'not valid UTF-8: if the export is in another '
                || 'encoding, set `encoding:` in its mapping (latin-1, utf-16)'
           when 'LINE SIZE OVER MAXIMUM' then 'the row is longer than a CSV row may be ('
                || error_message || '): a quote left open?'
           else 'cannot be read as CSV: ' || error_message
       end
from rejected_rows;

create or replace temp table rejected_count as select count(*) as n from rejected_rows;

drop macro relance_unshifted;
drop table rejected_shift;
drop table rejected_rows;
drop table /*@rejects*/;
drop table /*@scans*/
