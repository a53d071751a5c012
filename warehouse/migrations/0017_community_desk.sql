-- The community manager's desk (issue 18): what a person did about a learner, and what
-- learners wrote back. Both are facts the engine reads on the next run (a learner just
-- called gets no automated relance for a while; a reply is a sign of life), so they live
-- in the warehouse beside the ledger, not in the desk's own state.

-- One row per thing a community manager, tutor or support person recorded about a
-- learner: a contact (by phone, mail or video) and its outcome, or a snooze. Written by
-- the desk and by `relance team record`; never updated, a later row supersedes.
create table follow_up_actions (
    action_id     varchar primary key,
    learner_id    varchar not null,
    course_id     varchar not null,
    campaign_id   varchar,                 -- the campaign whose list the learner was on
    actor_email   varchar not null,        -- who recorded it (a person of the team file)
    kind          varchar not null check (kind in ('contact', 'snooze')),
    channel       varchar check (channel in ('phone', 'mail', 'video', 'chat', 'in_person')),
    outcome       varchar check (outcome in ('back_on_track', 'will_resume', 'stopping',
                                             'no_answer')),
    resume_on     date,                    -- outcome will_resume: the date they gave
    snooze_until  date,                    -- kind snooze: off the lists until then
    note          varchar,
    occurred_at   timestamptz not null,    -- logical time (relance.clock), when it happened
    recorded_at   timestamptz not null     -- logical time it was written
);
create index follow_up_actions_learner on follow_up_actions (learner_id, course_id);

-- One row per inbound mail read from SendGrid's Inbound Parse webhook or an IMAP mailbox,
-- whether or not it could be matched to a learner: nothing received is dropped. Bodies are
-- kept as text (size-capped by the receiver); attachments are not kept.
create table learner_replies (
    reply_id       varchar primary key,    -- stable per mail (its Message-ID, else a hash)
    source         varchar not null check (source in ('inbound_parse', 'imap')),
    received_at    timestamptz not null,   -- logical time it was read
    sent_at        timestamptz,            -- the mail's own Date header, if readable
    from_address   varchar,
    subject        varchar,
    body_text      varchar,
    learner_id     varchar,                -- null: matched no learner (status 'unmatched')
    course_id      varchar,
    campaign_id    varchar,
    message_id     varchar,                -- the relance message it answers, if known
    automatic      varchar,                -- why it is not a learner's words: auto_submitted,
                                           -- out_of_office, bounce; null = the learner wrote it
    category       varchar,                -- the campaign's routing category (technical,
                                           -- content, administrative, stop, ...) or 'other'
    routed_to      varchar,                -- an address or channel; 'desk' = the learner's
                                           -- community manager's list
    status         varchar not null check (status in ('routed', 'unmatched', 'refused',
                                                      'automatic', 'unsubscribed')),
    reason         varchar,                -- why unmatched or refused, in words
    acknowledged_message_id varchar        -- the thank-you sent for it, once
);
create index learner_replies_learner on learner_replies (learner_id, course_id);
