-- The presentations whose day offsets can be dated, and the reason given to the rows of
-- those that cannot.
create or replace temp table oulad_usable as
select course_id, starts_on, ends_on, length from oulad_calendar where problem is null;

create or replace temp macro oulad_undated(course_id) as
    'presentation ' || course_id || ' has no usable row in courses.csv, so its day offsets have no date';
