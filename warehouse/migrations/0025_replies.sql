-- Learners' replies (issue 18, relance/replies/): what learner_replies (0017) needs beyond
-- its first shape.

-- The forward of a reply to the address its category routes to (support, the trainer, the
-- training office): a row of the ledger (`messages`, trigger 'reply:forward'), planned once
-- per reply, as the acknowledgement is (acknowledged_message_id).
alter table learner_replies add column forwarded_message_id varchar;
-- Attachments are never kept: what the mail carried, in words ("2 attachments, 25.0 MB:
-- not kept"), so a reader knows the learner sent something.
alter table learner_replies add column attachments varchar;
-- A reply routed to `team` (the campaign's Slack or Teams channel): when it was posted
-- (logical time), or why not yet. Posted at most once: a post whose answer never came is
-- marked posted, with that said in team_error (as the team notifier does).
alter table learner_replies add column team_posted_at timestamptz;
alter table learner_replies add column team_error varchar;

-- One row per IMAP mailbox relance reads replies from: the highest UID read, under the
-- mailbox's UIDVALIDITY (RFC 3501: UIDs are only comparable under one). Moved in the same
-- transaction as the replies read, so each mail is read once; a new UIDVALIDITY starts
-- over (the replies' ids keep a mail read again from being stored twice).
create table reply_mailboxes (
    mailbox      varchar primary key,   -- user@host:port/folder
    uidvalidity  bigint not null,
    last_uid     bigint not null,
    updated_at   timestamptz not null   -- logical time of the fetch
);
