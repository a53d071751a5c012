-- Canvas's student enrollments and users (stg_canvas__records) -> canvas_users: who each
-- student is in the warehouse, and whether active since the course's cursor
-- (canvas_since: the newest last_activity_at of the last sync), counted more page views or
-- participations by the course analytics than at their last read
-- (canvas_summaries_before), or new to the warehouse: only those are asked for their
-- module progress and page views, and staged again. lms_users.sql has run.
create or replace temp table canvas_courses as
select course as canvas_course,
       case $course_key when 'id' then (record->>'$.id')
                        when 'sis_course_id' then (record->>'$.sis_course_id')
                        else (record->>'$.course_code') end          as course_id,
       record, _file, _row
from stg_canvas__records where kind = 'course';

create or replace temp table canvas_users as
select
    e.course                                                       as canvas_course,
    c.course_id,
    ((e.record->>'$.user_id'))::bigint                               as canvas_user,
    case $learner_key when 'id' then (e.record->>'$.user_id')
                      when 'login_id' then (u.record->>'$.login_id')
                      when 'sis_user_id' then (u.record->>'$.sis_user_id')
                      else lower((u.record->>'$.email')) end          as learner_id,
    (e.record->>'$.last_activity_at')                                as last_activity_at,
    e.record                                                       as enrollment,
    u.record                                                       as "user",
    e._file, e._row
from stg_canvas__records e
join canvas_courses c on c.canvas_course = e.course
left join stg_canvas__records u
       on u.kind = 'user' and u.course = e.course and (u.record->>'$.id') = (e.record->>'$.user_id')
where e.kind = 'enrollment'
-- a student in two sections of a course has two enrollments: the latest active counts
qualify row_number() over (partition by e.course, (e.record->>'$.user_id')
                           order by try_cast((e.record->>'$.last_activity_at') as timestamptz) desc nulls last, e._row) = 1;

alter table canvas_users add column is_new boolean;
alter table canvas_users add column active boolean;
alter table canvas_users add column summary_grew boolean;

-- only for courses whose summaries were read before: a first read has nothing to compare.
-- Each student's growth is computed apart and then looked up: DuckDB 1.5 (the shared
-- warehouse's) cannot run a left join on the updated row's columns inside a subquery.
create or replace temp table canvas_summary_growth as
select s.course, (s.record->>'$.id') as canvas_user,
       bool_or(try_cast((s.record->>'$.page_views') as bigint) > coalesce(b.page_views, 0)
            or try_cast((s.record->>'$.participations') as bigint) > coalesce(b.participations, 0)) as grew
from stg_canvas__records s
join canvas_since c on c.course = s.course and c.summaries_at is not null
left join canvas_summaries_before b
       on b.course = s.course and b.canvas_user::varchar = (s.record->>'$.id')
where s.kind = 'summary'
group by all;

update canvas_users u set summary_grew = coalesce((
    select bool_or(g.grew) from canvas_summary_growth g
    where g.course = u.canvas_course and g.canvas_user = u.canvas_user::varchar), false);

drop table canvas_summary_growth;

update canvas_users u set is_new = lms_new_enrolment(u.learner_id, u.course_id);

update canvas_users u set active = u.is_new or u.summary_grew or coalesce(
    try_cast(u.last_activity_at as timestamptz)
        > try_cast((select max(since) from canvas_since s where s.course = u.canvas_course) as timestamptz),
    (select max(since) from canvas_since s where s.course = u.canvas_course) is null)
