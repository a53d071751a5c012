-- One OULAD file as published, every value as text, with its row number, its raw row
-- (for quarantine) and its path. Files naming a module presentation keep the selected
-- ones; a row whose codes are blank is kept, so that it is quarantined rather than lost.
-- A row that cannot be split into the header's columns is set aside by the read
-- (oulad_read_rejects: see rejects.sql), to be quarantined.
create or replace temp table /*@table*/ as
select t.*, to_json(t) as _raw, $file as _file, row_number() over () as _row
from read_csv($file, header = true, all_varchar = true, delim = ',', quote = '"', escape = '"',
              store_rejects = true, rejects_table = 'oulad_read_rejects',
              rejects_scan = 'oulad_read_rejects_scans') t;

delete from /*@table*/ where not (/*@selection*/)
