-- Moodle's replies (stg_moodle__records) -> the model's entities as text in
-- stg_moodle__<entity>, for the shared loader. moodle_users.sql has run, lms_stage.sql
-- runs next (what Canvas's staging shares). Timestamps are Unix seconds (0 means never);
-- they are staged as ISO 8601 UTC.

-- Learners and enrolments: only those new to the warehouse or active since the cursor,
-- so a rerun stages nothing. Moodle's timezone 99 means "the site's".
create or replace table stg_moodle__learners as
select
    u.learner_id,
    arg_max((u.record->>'$.email'), u._row)                          as email,
    arg_max((u.record->>'$.firstname'), u._row)                      as first_name,
    arg_max((u.record->>'$.lastname'), u._row)                       as last_name,
    arg_max(nullif((u.record->>'$.lang'), ''), u._row)               as locale,
    arg_max(case when (u.record->>'$.timezone') in ('99', '') then null
                 else (u.record->>'$.timezone') end, u._row)         as timezone,
    null::varchar                                                   as manager_email,
    min(u._file) as _file, min(u._row) as _row, any_value(u.record)::varchar as _record
from moodle_users u
where u.is_learner and u.active
group by u.learner_id;

-- Moodle's enrolled users say nothing of when they enrolled: an enrolment starts with
-- the course, or when a sync first saw it if the course has no start date. What the
-- warehouse already knows of it is kept (lms_users.sql).
create or replace table stg_moodle__enrolments as
select
    u.learner_id, u.course_id, null::varchar as cohort,
    coalesce(e.enrolled_at, moodle_ts((c.record->>'$.startdate')), $now) as enrolled_at,
    coalesce(e.status, 'enrolled')                                as status,
    e.completed_at, e.withdrawn_at,
    u._file, u._row
from moodle_users u
join moodle_courses c using (moodle_course)
left join lms_enrolments_known e on e.learner_id = u.learner_id and e.course_id = u.course_id
where u.is_learner and u.active;

-- For lms_stage.sql: the participants of the courses read in full this sync (in
-- moodle_since), whose enrolments here are withdrawn if they are no longer among them.
create or replace temp table lms_read as
select course_id from moodle_courses where moodle_course in (select course from moodle_since);

create or replace temp table lms_listed as
select course_id, learner_id from moodle_users where is_learner;

create or replace temp table lms_courses as
select c.course_id, (c.record->>'$.fullname') as title,
       $base_url || '/course/view.php?id=' || c.moodle_course as url,
       null::varchar as forum_url,
       left(moodle_ts((c.record->>'$.startdate')), 10) as starts_on,
       left(moodle_ts((c.record->>'$.enddate')), 10) as ends_on,
       c._file, c._row
from moodle_courses c;

-- The calendar: every module but labels; its dates by Moodle's dataid (assign: duedate,
-- quiz and others: timeclose); required when it has completion tracking.
create or replace temp table moodle_modules as
select s.course as moodle_course, c.course_id,
       try_cast((s.record->>'$.section') as integer) as section,
       m.value as module, s._file, s._row
from stg_moodle__records s
join moodle_courses c on c.moodle_course = s.course,
     json_each((s.record->'$.modules')) m
where s.kind = 'section';

create or replace temp table lms_activities as
select
    m.course_id,
    (m.module->>'$.id')                                          as activity_id,
    (m.module->>'$.name')                                        as title,
    (m.module->>'$.modname')                                     as kind,
    case when m.section > 0 then m.section::varchar end        as week,
    moodle_ts(list_filter(from_json(coalesce((m.module->'$.dates'), '[]'), '[{"dataid":"varchar","timestamp":"bigint"}]'),
              lambda d: d.dataid in ('allowsubmissionsfromdate', 'timeopen', 'opendate', 'timeavailablefrom'))[1].timestamp) as opens_at,
    moodle_ts(list_filter(from_json(coalesce((m.module->'$.dates'), '[]'), '[{"dataid":"varchar","timestamp":"bigint"}]'),
              lambda d: d.dataid in ('duedate', 'timeclose', 'closedate', 'timeavailableto', 'deadline'))[1].timestamp) as due_at,
    null::varchar                                              as weight,
    case when coalesce(try_cast((m.module->>'$.completion') as integer), 0) > 0 then 'true' else 'false' end as is_required,
    (m.module->>'$.url')                                         as url,
    m._file, m._row
from moodle_modules m
where (m.module->>'$.modname') <> 'label';

-- Progress: a visit (lastcourseaccess), completion states (1 complete, 2 passed, 3
-- failed; 0 incomplete is no event), submissions from the grade report. Event ids are
-- built from what they record, so a repeated answer adds nothing.
create or replace table stg_moodle__progress_events as
select 'moodle:access:' || u.moodle_course || ':' || u.moodle_user || ':' || u.lastcourseaccess as event_id,
       u.learner_id, u.course_id, null::varchar as activity_id, 'accessed' as verb,
       moodle_ts(u.lastcourseaccess) as occurred_at, null::varchar as progress,
       u._file, u._row, u.record::varchar as _record
from moodle_users u
where u.is_learner and u.active and u.lastcourseaccess > 0
union all
select 'moodle:completion:' || r.course || ':' || ((r.record->>'$.cmid')) || ':' || r.userid || ':' || ((r.record->>'$.state')),
       u.learner_id, u.course_id, (r.record->>'$.cmid'),
       case (r.record->>'$.state') when '1' then 'completed' when '2' then 'passed' when '3' then 'failed' end,
       coalesce(moodle_ts((r.record->>'$.timecompleted')), moodle_ts(u.lastcourseaccess)),
       null, r._file, r._row, r.record::varchar
from stg_moodle__records r
join moodle_users u on u.moodle_course = r.course and u.moodle_user = r.userid
where r.kind = 'completion' and (r.record->>'$.state') in ('1', '2', '3')
union all
select 'moodle:submitted:' || g.course || ':' || ((i.value->>'$.id')) || ':' || u.moodle_user || ':' || ((i.value->>'$.gradedatesubmitted')),
       u.learner_id, u.course_id, (i.value->>'$.cmid'), 'submitted',
       moodle_ts((i.value->>'$.gradedatesubmitted')), null, g._file, g._row, i.value::varchar
from stg_moodle__records g
join moodle_users u on u.moodle_course = g.course and u.moodle_user = ((g.record->>'$.userid'))::bigint,
     json_each((g.record->'$.gradeitems')) i
where g.kind = 'grades' and u.is_learner and u.active
  and (i.value->>'$.itemtype') = 'mod' and try_cast((i.value->>'$.gradedatesubmitted') as bigint) > 0;

-- Discussions a learner started. Posts by staff (enrolled without a learner role) are not
-- learners' contributions; an author the course does not list is staged without a
-- learner id, so the loader quarantines the post with its reason.
create or replace table stg_moodle__contributions as
select 'moodle:discussion:' || ((d.record->>'$.discussion'))   as contribution_id,
       u.learner_id, c.course_id, 'forum_post' as kind,
       coalesce((d.record->>'$.name'), (d.record->>'$.subject')) as title,
       $base_url || '/mod/forum/discuss.php?d=' || ((d.record->>'$.discussion')) as url,
       moodle_ts((d.record->>'$.created'))                      as posted_at,
       (d.record->>'$.numreplies')                              as n_replies,
       case when ((d.record->>'$.pinned'))::boolean then 'true' end as is_notable,
       d._file, d._row, d.record::varchar as _record
from stg_moodle__records d
join moodle_courses c on c.moodle_course = d.course
left join moodle_users u on u.moodle_course = d.course and u.moodle_user = ((d.record->>'$.userid'))::bigint
where d.kind = 'discussion' and coalesce(u.is_learner, true)
