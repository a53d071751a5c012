-- Rows their connector already found wrong (a `_problem`, in the source's own terms: "date
-- is not a whole number of days") go to quarantine with that reason and the source's raw
-- row (`_raw`), before the entity's own checks run on the rest.
insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, $entity, _file, _row, coalesce(_raw::json, to_json(s)), _problem
from /*@staging*/ s
where _problem is not null;

delete from /*@staging*/ where _problem is not null
