-- One row per enrolment whose source reports how it ended (OULAD's final_result): what
-- a backtest compares a campaign's reach with. Kept apart from `enrolments.status`, which
-- says where the learner stands for campaigns (enrolled, completed, withdrawn).
create table outcomes (
    learner_id    varchar not null,
    course_id     varchar not null,
    final_result  varchar not null,   -- as the source words it: 'Pass', 'Distinction', 'Fail', 'Withdrawn'
    decided_at    timestamptz,        -- when it was settled: the withdrawal, or the course's end
    source        varchar not null,
    loaded_at     timestamptz not null default current_timestamp,
    primary key (learner_id, course_id)
);
