-- The rows their connector flagged (`_problem`), moved out of the staging before the load
-- (set_aside_flagged.sql), go to quarantine with that reason and the source's raw row
-- (`_raw`), before the entity's own checks run on the rest.
insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, $entity, _file, _row, coalesce(_raw::json, to_json(s)), _problem
from /*@flagged*/ s
