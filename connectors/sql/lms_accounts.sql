-- The user id each learner has in the LMS just read (Moodle, Canvas), for the LMS message
-- channels: staged as stg_/*@kind*/__lms_accounts when new or changed, from the users
-- <kind>_users.sql read (/*@users*/, its LMS id in /*@user*/; only learners: /*@learner*/).
-- Only for learners the warehouse holds or this load brings (a learner whose row will be
-- set aside, e.g. for an address no channel can send to, is staged again at each sync
-- until fixed: their account waits with them, so a rerun stages nothing new).
create or replace table stg_/*@kind*/__lms_accounts as
with listed as (
    select u.learner_id, min(u./*@user*/)::varchar as lms_user_id,
           min(u._file) as _file, min(u._row) as _row
    from /*@users*/ u
    where u.learner_id is not null and /*@learner*/
    group by u.learner_id
)
select l.* from listed l
where (exists (select 1 from learners w where w.learner_id = l.learner_id)
       or exists (select 1 from stg_/*@kind*/__learners s
                  where s.learner_id = l.learner_id
                    and (s.email is null or email_problem(trim(s.email)) is null)))
  and not exists (select 1 from lms_accounts a
                  where a.learner_id = l.learner_id and a.source = $source
                    and a.lms_user_id = l.lms_user_id)
