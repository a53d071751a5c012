"""The reasons the engine records, in one place: codes in the warehouse, words for people."""

REASONS = {
    "holdout": "in the control group: evaluated, never messaged",
    "no_email": "no e-mail address",
    "invalid_email": "an e-mail address no channel can send to (malformed, not ASCII, or too "
                     "long): fix it in the source",
    "unsubscribed": "unsubscribed, bounced or complained",
    "recently_contacted": "a person of the team contacted them lately (the desk): no automated "
                          "message for `limits.quiet_after_contact_days`, or until the date "
                          "they said they would resume",
    "course_ended": "the course has ended",
    "completed": "completed the course; this message is not for completers",
    "already_sent": "already sent for this occasion",
    "already_planned": "already planned, waiting for its send time",
    "already_failed": "already tried for this occasion and failed (see the ledger)",
    "already_cancelled": "already cancelled for this occasion",
    "already_uncertain": "already handed to the channel, outcome unknown",
    "campaign_weekly_cap": "already has a message of this campaign this week",
    "superseded": "another message of this campaign goes first this week",
    "frequency_cap": "weekly limit across all campaigns reached",
    "outside_send_window": "quiet hours or a non-sending day in the learner's timezone: deferred",
    "scheduled_time": "waiting for the message's weekly send time",
    "no_trigger": "nothing due for this stage now",
    "no_stage": "matched no stage",
    "missed_week": "its week is over (or the send window pushes it into the next one)",
    # why a planned message was cancelled when it was due (delivery: cancel.sql, recheck.sql)
    "withdrawn": "withdrew from the course before it went out",
    "stage_changed": "left the stage the message is for before it went out",
    "left_audience": "no longer in the campaign's audience when it was due",
    "no_longer_due": "its occasion no longer held when it was due (a milestone passed, "
                     "an activity no longer pending)",
}
# Why a manager's digest is not sent (engine/digests.py), besides the reasons above.
DIGEST_REASONS = {
    "invalid_address": "the manager's address is not a plain e-mail address",
    "empty_team": "no one of the manager's team to list (all in the control group)",
}


def explain(code: str | None) -> str:
    if not code:
        return ""
    base, _, detail = code.partition(":")
    text = REASONS.get(base) or DIGEST_REASONS.get(base, code)
    return f"{text} ({detail})" if detail else text
