-- The assignments assign.sql computed (team_targets, team_new), written in one transaction.

-- someone no longer in the team file follows no one
delete from team_assignments where person_email not in (select email from team_people);

-- learners whose person changed (or who had none): their new assignment
insert or replace into team_assignments
select t.learner_id, t.course_id, coalesce(t.kept, n.email),
       case when t.by_column is not null then 'column' else 'rule:' || t.rule_no end,
       $as_of
from team_targets t
left join team_new n using (learner_id, course_id)
left join team_assignments ta using (learner_id, course_id)
where coalesce(t.kept, n.email) is not null
  and (ta.person_email is distinct from coalesce(t.kept, n.email)
       or ta.how is distinct from case when t.by_column is not null then 'column'
                                       else 'rule:' || t.rule_no end);
