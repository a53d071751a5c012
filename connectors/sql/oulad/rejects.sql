-- An OULAD file's rows its read set aside (rejects.sql: rejected_rows) are kept in
-- oulad_rejected, to be staged as the rows of the entity the file feeds with their reason
-- (oulad.py: REJECTS_TO); the rows the read kept get back their row numbers in the file.
update /*@table*/ set _row = relance_unshifted(_row)
where exists (select 1 from rejected_shift);

insert into oulad_rejected
select '/*@table*/', $file, row_number, json_object('_row', row_number, 'line', csv_line), reason
from rejected_rows;

drop macro relance_unshifted;
drop table rejected_shift;
drop table rejected_rows
