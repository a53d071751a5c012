-- Who follows whom, as of $as_of: each active enrolment (enrolled, neither withdrawn nor
-- completed) gets one person of the team file, kept from week to week.
-- Inputs, from the team file (relance/team/assign.py): team_people (email, capacity,
-- position), team_rules (rule_no, courses, cohorts: null = any), team_rule_people
-- (rule_no, email, position). $by_column: 'tutor_email', 'manager_email' or null.
--
-- 1. The data's column names someone of the team with capacity: theirs ('column').
-- 2. Else the first rule that matches (course, cohort) decides; a learner already with one
--    of that rule's people stays with them.
-- 3. The others are shared among the rule's people by water-filling: each new learner goes
--    to the person whose load (all their learners), once given them, is the smallest share
--    of their capacity; ties by the order the rule lists them. Learners are taken in a
--    stable order (a hash of their ids), so a replay assigns alike.
create or replace temp table team_targets as
with active as (
    select e.learner_id, e.course_id, e.cohort,
           case $by_column when 'tutor_email' then t.tutor_email
                           when 'manager_email' then lower(l.manager_email) end as named
    from enrolments e
    join learners l using (learner_id)
    left join learner_tutors t using (learner_id)
    where e.enrolled_at <= $as_of
      and not coalesce(e.withdrawn_at <= $as_of, e.status = 'withdrawn')
      and not coalesce(e.completed_at <= $as_of, e.status = 'completed')
),
ruled as (
    select a.*, p.email as by_column,
           (select min(r.rule_no) from team_rules r
            where (r.courses is null or list_contains(r.courses, a.course_id))
              and (r.cohorts is null or list_contains(r.cohorts, a.cohort))) as rule_no
    from active a
    left join team_people p on p.email = a.named and p.capacity > 0
)
select r.learner_id, r.course_id, r.cohort, r.by_column, r.rule_no,
       -- the person they keep: the column's, else their current one if the rule still has them
       coalesce(r.by_column, case when rp.email is not null then ta.person_email end) as kept
from ruled r
left join team_assignments ta using (learner_id, course_id)
left join (select rp.rule_no, rp.email from team_rule_people rp
           join team_people p using (email) where p.capacity > 0) rp
    on rp.rule_no = r.rule_no and rp.email = ta.person_email and r.by_column is null;

create or replace temp table team_new as
with need as (
    select learner_id, course_id, rule_no,
           row_number() over (partition by rule_no order by md5(learner_id || '/' || course_id)) as k
    from team_targets
    where kept is null and rule_no is not null
),
n_need as (select rule_no, count(*) as n from need group by all),
loads as (select kept as email, count(*) as load from team_targets where kept is not null group by all),
slots as (
    select rp.rule_no, rp.email, rp.position, p.capacity, unnest(range(n.n)) as i
    from team_rule_people rp
    join team_people p using (email)
    join n_need n using (rule_no)
    where p.capacity > 0
),
ranked as (
    select s.rule_no, s.email,
           row_number() over (partition by s.rule_no
                              order by (coalesce(ld.load, 0) + s.i + 1)::double / s.capacity,
                                       s.position, s.i) as k
    from slots s
    left join loads ld using (email)
)
select need.learner_id, need.course_id, need.rule_no, ranked.email
from need
join ranked using (rule_no, k);
