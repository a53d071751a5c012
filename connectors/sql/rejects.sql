-- Rows of a CSV file that DuckDB's read could not split into the header's columns (more
-- or fewer values, a stray quote, bytes that are not UTF-8), which the read set aside in
-- its rejects table (`store_rejects`, in /*@rejects*/ and /*@scans*/) rather than stop:
-- rejected_rows, one per row with its number in the file, its line as written and why.
-- A rejected row is at row `$rows_before + line - 1` (line 1 is the header; a file's
-- appended part starts after `$rows_before` rows). Each query of the read adds its rejects
-- again, and a row can have several (the read's first error first): one per line. The
-- line is kept as written, without the line breaks the read leaves around it (a CRLF
-- file's lines start with the LF of the line before).
-- `unclosed`: a quoted value runs past its line and is not closed where its row ends: the
-- read may have taken the rows after it, up to the next quote or the end of the file, as
-- part of it; they are not set aside one by one, and would be lost (the sync stops on it:
-- base.py, read_rejects).
--
-- The read numbers the rows it keeps: a row after k rejected ones is numbered k rows too
-- early. relance_unshifted(k) is the row number in the file of the row the read numbered k.
create or replace temp table rejected_rows as
select distinct on (line)
    $rows_before + line - 1                                         as row_number,
    trim(csv_line, chr(13) || chr(10))                              as csv_line,
    case error_type::varchar
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
    end                                                             as reason,
    bool_or(error_message = 'Value with unterminated quote found.'
            and contains(trim(csv_line, chr(13) || chr(10)), chr(10)))
        over (partition by line)                                    as unclosed
from /*@rejects*/
order by line, byte_position, column_idx;

-- rows kept before the j-th rejected one (rows_before included): a kept row numbered k is
-- after every rejected row whose `kept_before` is below k
create or replace temp table rejected_shift as
select row_number - row_number() over (order by row_number) as kept_before
from rejected_rows;

create or replace temp macro relance_unshifted(k) as
    k + (select count(*) from rejected_shift where kept_before < k);

drop table /*@rejects*/;
drop table /*@scans*/
