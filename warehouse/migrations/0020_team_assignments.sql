-- Who follows whom (issue 18): the team file's people (campaigns/_team.yaml) are given
-- learners from a column of the data or by its rules, and keep them from week to week.

-- One row per learner whose source names their tutor or community manager (the learners
-- entity's optional `tutor_email` column, loaded by connectors/sql/load_learners.sql like
-- manager_email); the team file's `assignment.column` decides whether it assigns them.
-- A table of its own rather than a column of `learners`, whose rows many writers insert
-- by position.
create table learner_tutors (
    learner_id   varchar primary key,
    tutor_email  varchar not null,
    source       varchar not null,
    loaded_at    timestamptz not null
);

-- One row per learner and course: the person of the team who follows them, since when and
-- why (`column` = from the data's column, `rule:<n>` = the team file's nth rule). Written
-- by `relance team assign` (and before each daily list); a row is kept while its person is
-- still in the team file with capacity and, for a rule, the rule still matches: stable
-- from week to week. A learner moved to someone else gets a new assigned_at.
create table team_assignments (
    learner_id    varchar not null,
    course_id     varchar not null,
    person_email  varchar not null,
    how           varchar not null,
    assigned_at   timestamptz not null,     -- logical time (relance.clock)
    primary key (learner_id, course_id)
);
create index team_assignments_person on team_assignments (person_email);
