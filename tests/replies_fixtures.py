"""Shared by the replies tests: a campaign with a `replies:` block and an acknowledgement,
a learner who got a relance (so a reply address exists), and replies written as mail
clients write them."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from relance.channels.outbox import OutboxChannel
from relance.runs.steps import run_campaign
from tests.conftest import MONDAY

REPLIES_BLOCK = """\
replies:
  address: replies@example.org
  support: support@example.org
  trainer: formateur@example.org
  training_office: scolarite@example.org
  acknowledgement: merci
"""

ACK = {"fr": ("Merci {{ learner.first_name }}",
              "Merci pour votre message « {{ reply.subject }} » ({{ reply.category }}) : nous "
              "l'avons transmis."),
       "en": ("Thank you {{ learner.first_name }}",
              "Thank you for your message \"{{ reply.subject }}\" ({{ reply.category }}): we "
              "passed it on.")}


def write_campaign(campaigns, extra: str = REPLIES_BLOCK, cid: str = "test"):
    overrides = {}
    for locale, (subject, body) in ACK.items():
        overrides[f"merci/{locale}/subject.txt"] = subject
        overrides[f"merci/{locale}/body.txt"] = body
    campaigns.write(campaigns.base(cid) + extra, template_overrides=overrides)
    return campaigns.load(cid)


def sent_relance(wh, cohort, campaigns, tmp_path, **learner):
    """A learner silent for 10 days who got the `relance` message (in the outbox); returns
    (learner_id, message_id, its Reply-To address, the loaded campaign)."""
    loaded = write_campaign(campaigns)
    lid = cohort.learner(inactive_days=10, **learner)
    run_campaign(wh, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    mid = wh.execute("select message_id from messages where learner_id = ? and status = 'sent'",
                     [lid]).fetchall()[0][0]
    from email import message_from_bytes
    eml = message_from_bytes((tmp_path / "out" / loaded.id / f"{mid}.eml").read_bytes())
    return lid, mid, eml["Reply-To"], loaded


def reply(to: str, body: str, *, sender: str = "l00001@example.org", subject: str = "Re: relance",
          headers: dict | None = None, message_id: str | None = None,
          at=MONDAY + timedelta(hours=2)) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Zoé Lefèvre <{sender}>"
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(at)
    mail["Message-ID"] = message_id or f"<{abs(hash((to, body, subject)))}@mail.example.org>"
    for k, v in (headers or {}).items():
        mail[k] = v
    mail.set_content(body)
    return bytes(mail)
