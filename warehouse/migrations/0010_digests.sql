-- Managers' weekly digests (relance/digests/). The digest itself is a row of the ledger
-- (`messages`, trigger 'digest', learner_id 'manager:<address>'); this says who it lists.

-- One row per learner per course a planned digest covers: the group they are listed under,
-- or listed = false for a control-group learner withheld from it (counted, not named).
-- Written with the digest's ledger row, in the same transaction; delivery renders the team
-- from here, so a manager sees exactly the team that was planned for them.
create table digest_members (
    message_id  varchar not null,
    learner_id  varchar not null,
    course_id   varchar not null,
    group_name  varchar not null,
    listed      boolean not null,
    primary key (message_id, learner_id, course_id)
);
