"""Transports. Each channel takes a batch of rendered messages and says, for each, whether
the transport accepted it. Channels never touch the warehouse: the ledger is delivery's."""

from __future__ import annotations

from pathlib import Path

from relance.channels.base import Channel, ChannelConfigError, OutgoingMessage, SendResult

CHANNELS = ("outbox", "sendgrid", "smtp", "moodle", "canvas")


def get_channel(name: str, *, outbox_dir: str | Path = "outbox", campaign=None) -> Channel:
    """The channel `name`, configured from the campaign's options (`sendgrid:`, `smtp:`,
    `moodle:`, `canvas:`), the environment (secrets, the SendGrid API host) and, for the LMS
    channels, the sources file (the site and its token, as the connectors read them)."""
    if name == "outbox":
        from relance.channels.outbox import OutboxChannel
        return OutboxChannel(outbox_dir)
    if name == "sendgrid":
        from relance.campaign.sending import SendGridOptions
        from relance.channels.sendgrid import SendGridChannel, api_key
        from relance.settings import Settings
        options = campaign.sendgrid if campaign is not None else SendGridOptions()
        return SendGridChannel(api_key(options.api_key_secret), host=Settings().sendgrid_host,
                               categories=options.categories, sandbox=options.sandbox,
                               templates=options.templates, concurrency=options.concurrency)
    if name == "smtp":
        if campaign is None or campaign.smtp is None:
            raise ChannelConfigError("the smtp channel needs the campaign's `smtp:` block "
                                     "(host, port, security, username)")
        from relance.channels.smtp import SmtpChannel
        return SmtpChannel.from_options(campaign.smtp)
    if name in ("moodle", "canvas"):
        options = getattr(campaign, name, None) if campaign is not None else None
        if options is None:
            raise ChannelConfigError(f"the {name} channel needs the campaign's `{name}:` block "
                                     f"naming its source, e.g. `{name}: {{source: {name}-prod}}`")
        if name == "moodle":
            from relance.channels.moodle_messages import MoodleMessagesChannel
            return MoodleMessagesChannel.from_options(options)
        from relance.channels.canvas_messages import CanvasMessagesChannel
        return CanvasMessagesChannel.from_options(options)
    raise ValueError(f"unknown channel {name!r}; available: {', '.join(CHANNELS)}")


def for_campaign(loaded, outbox_dir: str | Path = "outbox") -> Channel:
    return get_channel(loaded.campaign.channel, outbox_dir=outbox_dir, campaign=loaded.campaign)


__all__ = ["Channel", "ChannelConfigError", "OutgoingMessage", "SendResult", "get_channel",
           "for_campaign"]
