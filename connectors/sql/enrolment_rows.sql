-- The checks of a staged row about one enrolment (an outcome, a study history: both a
-- studentInfo row of OULAD), written once for the loads that include them. A load
-- begins `create or replace temp table checked as with typed as (...)`, reading its rows
-- into their types: the row's place (_file, _row, _key), learner_id, course_id, its own
-- columns, and `problem`, the first of its own checks the row fails (NULL: none); then
-- `/*@include enrolment_rows*/` ends that statement, from `typed` on. (A CTE, not a temp
-- view: a view cannot take the load's parameters.)
-- A row is set aside with the first reason it meets, in this order: its learner or its
-- course missing, its own problem, no such enrolment in the warehouse, its learner and
-- course more than once in this load. The rows left in `checked` (reason NULL) are the
-- load's to merge; it drops `checked` after.
select t.* exclude (problem),
    case
        when relance_blank(t.learner_id) then 'missing learner_id'
        when relance_blank(t.course_id) then 'missing course_id'
        when t.problem is not null then t.problem
        when e.learner_id is null then 'unknown enrolment: learner ' || t.learner_id || ' on course ' || t.course_id
    end as reason
from typed t
left join enrolments e on e.learner_id = t.learner_id and e.course_id = t.course_id;

-- a learner and course twice: every row of them is set aside (a group by, not a window
-- over every row)
update checked set reason = 'learner and course appear more than once in this load'
where reason is null
  and (learner_id, course_id) in (select (learner_id, course_id) from checked
                                  group by all having count(*) > 1);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, $entity, c._file, c._row, to_json(s), c.reason
from checked c
join /*@staging*/ s on s./*@key*/ = c._key
where c.reason is not null;

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from checked;
