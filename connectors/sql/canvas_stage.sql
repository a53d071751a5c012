-- Canvas's replies (stg_canvas__records) -> the model's entities as text in
-- stg_canvas__<entity>, for the shared loader. canvas_users.sql has run, lms_stage.sql
-- runs next (what Moodle's staging shares).

-- Learners and enrolments: only those new to the warehouse or active since the cursor.
-- Canvas's sortable_name is "Last, First".
create or replace table stg_canvas__learners as
select
    u.learner_id,
    arg_max(u."user"->>'$.email', u._row)                          as email,
    arg_max(coalesce(nullif(trim(split_part(u."user"->>'$.sortable_name', ',', 2)), ''),
                     u."user"->>'$.short_name'), u._row)           as first_name,
    arg_max(case when u."user"->>'$.sortable_name' like '%,%'
                 then trim(split_part(u."user"->>'$.sortable_name', ',', 1)) end, u._row) as last_name,
    arg_max(u."user"->>'$.locale', u._row)                         as locale,
    arg_max(u."user"->>'$.time_zone', u._row)                      as timezone,
    null::varchar                                                  as manager_email,
    min(u._file) as _file, min(u._row) as _row
from canvas_users u
where u.active
group by u.learner_id;

-- Canvas's enrollment states: active / invited -> enrolled, completed -> completed (the
-- course was concluded for them), inactive -> withdrawn (deactivated by a teacher). What
-- the warehouse already knows of an enrolment's times is kept (lms_users.sql).
create or replace table stg_canvas__enrolments as
select
    u.learner_id, u.course_id, (u.enrollment->>'$.course_section_id') as cohort,
    coalesce(e.enrolled_at, (u.enrollment->>'$.start_at'), (u.enrollment->>'$.created_at')) as enrolled_at,
    case (u.enrollment->>'$.enrollment_state') when 'completed' then 'completed'
                                             when 'inactive' then 'withdrawn'
                                             else 'enrolled' end    as status,
    case when (u.enrollment->>'$.enrollment_state') = 'completed'
         then coalesce(e.completed_at, (u.enrollment->>'$.updated_at')) end as completed_at,
    case when (u.enrollment->>'$.enrollment_state') = 'inactive'
         then coalesce(e.withdrawn_at, (u.enrollment->>'$.updated_at')) end as withdrawn_at,
    u._file, u._row
from canvas_users u
left join lms_enrolments_known e on e.learner_id = u.learner_id and e.course_id = u.course_id
where u.active;

-- For lms_stage.sql: the student enrollments of the courses read in full this sync (in
-- canvas_since), whose enrolments here are withdrawn if they are no longer among them.
create or replace temp table lms_read as
select course_id from canvas_courses where canvas_course in (select course from canvas_since);

create or replace temp table lms_listed as
select course_id, learner_id from canvas_users;

create or replace temp table lms_courses as
select c.course_id, (c.record->>'$.name') as title,
       $base_url || '/courses/' || c.canvas_course as url,
       null::varchar as forum_url,
       left((c.record->>'$.start_at'), 10) as starts_on,
       left((c.record->>'$.end_at'), 10) as ends_on,
       c._file, c._row
from canvas_courses c;

-- The calendar: module items (not sub-headers), dates from their content details,
-- required when the module sets a completion requirement; week = the module's position.
create or replace temp table lms_activities as
select
    c.course_id,
    (i.value->>'$.id')                                           as activity_id,
    (i.value->>'$.title')                                        as title,
    lower((i.value->>'$.type'))                                  as kind,
    (m.record->>'$.position')                                    as week,
    (i.value->>'$.content_details.unlock_at')                    as opens_at,
    (i.value->>'$.content_details.due_at')                       as due_at,
    null::varchar                                              as weight,
    case when json_type(i.value, '$.completion_requirement') = 'OBJECT'
         then 'true' else 'false' end                         as is_required,
    (i.value->>'$.html_url')                                     as url,
    m._file, m._row
from stg_canvas__records m
join canvas_courses c on c.canvas_course = m.course,
     json_each((m.record->'$.items')) i
where m.kind = 'module' and (i.value->>'$.type') <> 'SubHeader';

-- Progress: the enrollment's last activity, each completed requirement (Canvas gives no
-- moment for it: the student's last activity is the latest it can be), each page view
-- on the course, and each growth of the course analytics' counts that the last activity
-- does not show (its moment unknown: this sync's, the latest it can be). Ids say what
-- they record, so a repeated answer adds nothing.
create or replace table stg_canvas__progress_events as
select 'canvas:activity:' || u.canvas_course || ':' || u.canvas_user || ':' || u.last_activity_at as event_id,
       u.learner_id, u.course_id, null::varchar as activity_id, 'accessed' as verb,
       u.last_activity_at as occurred_at, null::varchar as progress, u._file, u._row
from canvas_users u
where u.active and u.last_activity_at is not null
union all
select 'canvas:completed:' || m.course || ':' || ((i.value->>'$.id')) || ':' || m.userid,
       u.learner_id, u.course_id, (i.value->>'$.id'), 'completed',
       coalesce(u.last_activity_at, $now), null, m._file, m._row
from stg_canvas__records m
join canvas_users u on u.canvas_course = m.course and u.canvas_user = m.userid,
     json_each((m.record->'$.items')) i
where m.kind = 'student_module'
  and ((i.value->>'$.completion_requirement.completed'))::boolean
union all
select 'canvas:page_view:' || ((v.record->>'$.id')),
       u.learner_id, u.course_id, null, 'accessed',
       (v.record->>'$.created_at'), null, v._file, v._row
from stg_canvas__records v
join canvas_users u on u.canvas_course = v.course and u.canvas_user = v.userid
where v.kind = 'page_view'
union all
select 'canvas:summary:' || u.canvas_course || ':' || u.canvas_user || ':'
           || ((s.record->>'$.page_views')) || ':' || ((s.record->>'$.participations')),
       u.learner_id, u.course_id, null, 'accessed', $now, null, s._file, s._row
from canvas_users u
join stg_canvas__records s
  on s.kind = 'summary' and s.course = u.canvas_course and (s.record->>'$.id') = u.canvas_user::varchar
left join canvas_summaries_before b on b.course = u.canvas_course and b.canvas_user = u.canvas_user
where u.summary_grew and u.last_activity_at is not distinct from b.last_activity_at;

-- Discussion entries by the course's students (teachers' and TAs' posts are not
-- learners' contributions).
create or replace table stg_canvas__contributions as
select 'canvas:entry:' || ((d.record->>'$.id'))                   as contribution_id,
       u.learner_id, u.course_id, 'forum_post' as kind,
       (d.record->>'$.topic_title')                                as title,
       (d.record->>'$.topic_url') || '#entry-' || ((d.record->>'$.id')) as url,
       (d.record->>'$.created_at')                                 as posted_at,
       coalesce(json_array_length((d.record->'$.recent_replies')), 0)::varchar as n_replies,
       null::varchar                                             as is_notable,
       d._file, d._row, d.record::varchar as _record
from stg_canvas__records d
join canvas_users u on u.canvas_course = d.course and u.canvas_user::varchar = (d.record->>'$.user_id')
where d.kind = 'entry'
