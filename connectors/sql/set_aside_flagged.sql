-- Rows their connector already found wrong (a `_problem`, in the source's own terms: "date
-- is not a whole number of days") are moved out of the staging, before the load's
-- transaction, into a temp table of their own: quarantine_flagged.sql sets them aside
-- with that reason in the transaction, and the entity's own checks run on the rest.
create or replace temp table /*@flagged*/ as
select * from /*@staging*/ where _problem is not null;

delete from /*@staging*/ where _problem is not null
