-- Moodle's enrolled users (stg_moodle__records, kind 'user', one per course and user) ->
-- moodle_users: who each is in the warehouse, whether a learner (by role), and whether
-- active since the course's cursor (moodle_since) or new to the warehouse: only those
-- are asked for their completion statuses and staged again. lms_users.sql has run.
create or replace temp macro moodle_ts(x) as case
    when try_cast(x as bigint) > 0
        then strftime(make_timestamp(try_cast(x as bigint) * 1000000), '%Y-%m-%dT%H:%M:%S') || 'Z'
end;

create or replace temp table moodle_courses as
select ((record->>'$.id'))::bigint as moodle_course,
       case $course_key when 'id' then (record->>'$.id')
                        when 'idnumber' then nullif((record->>'$.idnumber'), '')
                        else (record->>'$.shortname') end             as course_id,
       record, _file, _row
from stg_moodle__records where kind = 'course';

create or replace temp table moodle_users as
select
    r.course                                                      as moodle_course,
    c.course_id,
    ((r.record->>'$.id'))::bigint                                   as moodle_user,
    case $learner_key when 'id' then (r.record->>'$.id')
                      when 'email' then lower((r.record->>'$.email'))
                      when 'idnumber' then nullif((r.record->>'$.idnumber'), '')
                      else (r.record->>'$.username') end             as learner_id,
    coalesce(try_cast((r.record->>'$.lastcourseaccess') as bigint), 0) as lastcourseaccess,
    len(list_intersect(coalesce(json_extract_string(r.record, '$.roles[*].shortname'), []),
                       $roles)) > 0                               as is_learner,
    r.record, r._file, r._row
from stg_moodle__records r
join moodle_courses c on c.moodle_course = r.course
where r.kind = 'user';

alter table moodle_users add column active boolean;

-- graded since counts too: a grade can complete an activity (a passing grade required)
-- days after the learner's last visit
-- a visit in the cursor's second is new unless its learner is among those the cursor saw
-- then (`seen`; NULL for a cursor written before it was kept: strictly after, then)
update moodle_users u set active =
    u.lastcourseaccess > coalesce((select max(since) from moodle_since s where s.course = u.moodle_course), -1)
    or exists (select 1 from moodle_since s
               where s.course = u.moodle_course and u.lastcourseaccess = s.since and s.since > 0
                 and not coalesce(list_contains(s.seen, u.moodle_user), true))
    or lms_new_enrolment(u.learner_id, u.course_id)
    or exists (select 1 from stg_moodle__records g, json_each((g.record->'$.gradeitems')) i
               where g.kind = 'grades' and g.course = u.moodle_course
                 and ((g.record->>'$.userid'))::bigint = u.moodle_user
                 and try_cast((i.value->>'$.gradedategraded') as bigint)
                     > coalesce((select max(since) from moodle_since s where s.course = u.moodle_course), -1))
