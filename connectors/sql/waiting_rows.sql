-- How many rows of an entity this load set aside for want of a learner, course or
-- enrolment, not for what they say: a later load may bring what they name, and a file
-- source then reads their file again rather than leave them out for good (csv_export.py).
create or replace temp table waiting_rows as
select count(*) as n
from quarantine
where load_id = $load_id and entity = $entity
  and (starts_with(reason, 'unknown learner: ') or starts_with(reason, 'unknown course: ')
       or starts_with(reason, 'unknown enrolment: '))
