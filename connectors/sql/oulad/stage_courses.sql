-- courses.csv -> stg_oulad__courses: one course per module presentation, from day 0 to
-- its last day (day `module_presentation_length`, when the exams fall).
create or replace temp table /*@staging*/ as
select
    course_id,
    'OULAD ' || module || ' ' || presentation                      as title,
    null::varchar                                                   as url,
    null::varchar                                                   as forum_url,
    strftime(starts_on, '%Y-%m-%d')                                 as starts_on,
    strftime(ends_on, '%Y-%m-%d')                                   as ends_on,
    _file, _row, _raw, problem                                      as _problem
from oulad_calendar
