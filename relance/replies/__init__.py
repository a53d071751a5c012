"""Learners' replies (issue 18): read from SendGrid's Inbound Parse webhook (`relance serve`,
inbound_parse.py) and from an IMAP mailbox (imap.py), recognised as automatic or not
(mail.py), matched to their learner and message, sorted, routed and acknowledged
(ingest.py). docs/replies.md says it for users."""
