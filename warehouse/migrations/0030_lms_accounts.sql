-- The LMS message channels (issue 18, item 5) write to a learner in their LMS's own inbox,
-- which knows them by its user id, not by the warehouse's learner id (a username, an
-- e-mail, an SIS id: whatever the source's `learner_id` setting chose).

-- One row per learner and LMS source: the user id that source's LMS knows the learner by
-- (Moodle's `id` of core_enrol_get_enrolled_users, Canvas's enrollment `user_id`).
-- Written by the Moodle and Canvas connectors at each sync (connectors/sql/lms_accounts.sql,
-- loaded by load_lms_accounts.sql); read by delivery for the moodle and canvas channels.
create table lms_accounts (
    learner_id   varchar not null,
    source       varchar not null,      -- the source's name in the sources file
    lms_user_id  varchar not null,
    loaded_at    timestamptz not null,  -- the load that last wrote it (logical time)
    primary key (learner_id, source)
);
