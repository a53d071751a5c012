-- The learning data every campaign reads. Connectors fill these tables through their
-- staging tables (stg_<source>__<entity>); nothing else writes them.

-- One row per learner (a person), whatever the number of courses.
create table learners (
    learner_id     varchar primary key,
    email          varchar,
    first_name     varchar,
    last_name      varchar,
    locale         varchar,          -- BCP 47 language, e.g. 'fr', 'en', 'fr-CA'
    timezone       varchar,          -- IANA name, e.g. 'Europe/Paris'
    manager_email  varchar,
    source         varchar not null,
    loaded_at      timestamptz not null default current_timestamp
);

-- One row per course (a path, a MOOC session, a module presentation).
create table courses (
    course_id   varchar primary key,
    title       varchar not null,
    url         varchar,
    forum_url   varchar,
    starts_on   date,
    ends_on     date,
    source      varchar not null,
    loaded_at   timestamptz not null default current_timestamp
);

-- One row per learner per course.
create table enrolments (
    learner_id    varchar not null,
    course_id     varchar not null,
    cohort        varchar,
    enrolled_at   timestamptz not null,
    status        varchar not null default 'enrolled'
                  check (status in ('enrolled', 'completed', 'withdrawn')),
    completed_at  timestamptz,
    withdrawn_at  timestamptz,
    source        varchar not null,
    loaded_at     timestamptz not null default current_timestamp,
    primary key (learner_id, course_id)
);

-- One row per activity of a course: the course calendar.
create table activities (
    course_id     varchar not null,
    activity_id   varchar not null,
    title         varchar not null,
    kind          varchar,           -- 'lesson', 'quiz', 'assignment', 'live', 'forum' ...
    week          integer,           -- course week it belongs to (1 = first week)
    opens_at      timestamptz,
    due_at        timestamptz,
    weight        double not null default 1,
    is_required   boolean not null default true,
    url           varchar,
    source        varchar not null,
    loaded_at     timestamptz not null default current_timestamp,
    primary key (course_id, activity_id)
);

-- One row per thing a learner did (append only). No primary key on purpose: a unique
-- index over tens of millions of events costs memory for nothing; loaders deduplicate
-- on event_id with an anti-join instead.
create table progress_events (
    event_id      varchar not null,
    learner_id    varchar not null,
    course_id     varchar not null,
    activity_id   varchar,
    verb          varchar not null,  -- 'accessed', 'progressed', 'completed', 'submitted', 'passed', 'failed'
    occurred_at   timestamptz not null,
    progress      double,            -- overall course progress reported by the LMS, 0..1
    source        varchar not null,
    loaded_at     timestamptz not null default current_timestamp
);

-- One row per contribution (forum post, shared resource, peer review ...).
create table contributions (
    contribution_id  varchar primary key,
    learner_id       varchar not null,
    course_id        varchar not null,
    kind             varchar not null default 'forum_post',
    title            varchar,
    url              varchar,
    posted_at        timestamptz not null,
    n_replies        integer not null default 0,
    is_notable       boolean not null default false,
    source           varchar not null,
    loaded_at        timestamptz not null default current_timestamp
);

-- One row per load of a source: what came in, what was kept, what was set aside.
create table loads (
    load_id          varchar primary key,
    source           varchar not null,
    started_at       timestamptz not null,
    finished_at      timestamptz,
    status           varchar not null check (status in ('running', 'succeeded', 'failed')),
    n_rows           integer,
    n_loaded         integer,
    n_quarantined    integer,
    flow_run_id      varchar,
    error            varchar
);

-- One row per source row that could not be loaded, with why. Nothing is dropped silently.
create table quarantine (
    load_id        varchar not null,
    source         varchar not null,
    entity         varchar not null,   -- 'learners', 'progress_events' ...
    source_file    varchar,
    row_number     bigint,
    raw            json not null,
    reason         varchar not null,
    quarantined_at timestamptz not null default current_timestamp
);

-- One row per address that must not receive mail (unsubscribe, bounce, spam report).
-- campaign_id null means every campaign.
create table suppressions (
    email        varchar not null,
    campaign_id  varchar,
    reason       varchar not null,
    source       varchar not null,
    created_at   timestamptz not null default current_timestamp
);
