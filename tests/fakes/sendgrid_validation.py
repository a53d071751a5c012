"""SendGrid's checks of a v3 mail/send body, as its documentation lists them (the local
stand-in's 400 answers): required fields, at most 1,000 personalizations and recipients,
each address once, valid addresses, substitutions and custom_args of at most 10,000 bytes,
at most 10 categories, dynamic_template_data only with a template."""

from __future__ import annotations

import json
import re

MAX_BODY = 30 * 1024 * 1024
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
EMAIL = re.compile(r"^[^@\s\"<>,;]+@[^@\s\"<>,;]+\.[^@\s\"<>,;]+$")
RESERVED_HEADERS = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                    "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"}


def _error(message: str, field: str | None, anchor: str) -> dict:
    return {"message": message, "field": field, "help": f"{HELP}#message.{anchor}"}


def in_message(error: dict) -> dict:
    """An error as SendGrid's newer validation answers it (its support article "Validation
    Error(s) when Sending Emails Using the Mail Send API"): what it names only in the text,
    a personalization's errors named at the personalization ("... for field
    personalizations.0"), `field` and `help` null."""
    field = error.get("field")
    if not field:
        return {**error, "help": None}
    named = ".".join(field.split(".")[:2]) if field.startswith("personalizations.") else field
    return {"message": f"Validation error(s): {error['message']} for field {named}",
            "field": None, "help": None}


def validate(mail: object) -> list[dict]:
    """SendGrid's 400 errors for this body; empty if it would be accepted."""
    if not isinstance(mail, dict):
        return [_error("Bad Request", None, "body")]
    errors: list[dict] = []
    template = mail.get("template_id")
    ps = mail.get("personalizations")
    if not isinstance(ps, list) or not ps:
        errors.append(_error("The personalizations field is required and must have at least "
                             "one personalization.", "personalizations", "personalizations"))
        ps = []
    if len(ps) > 1000:
        errors.append(_error(f"The personalization block is limited to 1000 personalizations "
                             f"per API request. You have provided {len(ps)} personalizations. "
                             "Please consider splitting this into multiple requests and "
                             "resending your request.", "personalizations", "personalizations"))
        return errors
    seen: set[str] = set()
    n_recipients = 0
    for i, p in enumerate(ps):
        where = f"personalizations.{i}"
        if not isinstance(p, dict) or not isinstance(p.get("to"), list) or not p["to"]:
            errors.append(_error("The to array is required for all personalization objects, "
                                 "and must have at least one email object with a valid email "
                                 "address.", f"{where}.to", "personalizations.to"))
            continue
        for kind in ("to", "cc", "bcc"):
            for j, r in enumerate(p.get(kind) or []):
                n_recipients += 1
                email = r.get("email") if isinstance(r, dict) else None
                # SendGrid takes no address that needs SMTPUTF8 (a non-ASCII local part)
                if (not isinstance(email, str) or not EMAIL.match(email)
                        or not email.partition("@")[0].isascii()):
                    errors.append(_error("Does not contain a valid address.",
                                         f"{where}.{kind}.{j}.email", f"personalizations.{kind}"))
                    continue
                if email.lower() in seen:
                    errors.append(_error(
                        "Each email address in the personalization block should be unique "
                        "between to, cc, and bcc. We found the first duplicate instance of "
                        f"[{email}] in the personalizations.{i}.{kind} field.",
                        f"{where}.{kind}.{j}.email", "personalizations"))
                seen.add(email.lower())
        if not template and not (p.get("subject") or mail.get("subject")):
            errors.append(_error("The subject is required. You can get around this requirement "
                                 "if you use a template with a subject defined or if every "
                                 "personalization has a subject defined.", f"{where}.subject",
                                 "subject"))
        subs = p.get("substitutions") or {}
        if len(json.dumps(subs).encode()) > 10_000:
            errors.append(_error("The total size of your substitutions may not exceed 10,000 "
                                 "bytes per personalization object.", f"{where}.substitutions",
                                 "personalizations.substitutions"))
        args = {**(mail.get("custom_args") or {}), **(p.get("custom_args") or {})}
        if len(json.dumps(args).encode()) > 10_000:
            errors.append(_error("The total size of custom arguments may not exceed 10,000 "
                                 "bytes per personalization object.", f"{where}.custom_args",
                                 "custom_args"))
        if any(not isinstance(v, str) for v in args.values()):
            errors.append(_error("Custom arguments must be strings.", f"{where}.custom_args",
                                 "custom_args"))
        for name, value in (p.get("headers") or {}).items():
            if name.lower() in RESERVED_HEADERS or not isinstance(value, str):
                errors.append(_error(f"The header {name} is reserved or its value is not a "
                                     "string.", f"{where}.headers", "headers"))
        if "dynamic_template_data" in p and not str(template or "").startswith("d-"):
            errors.append(_error("dynamic_template_data is only allowed with a dynamic "
                                 "template (template_id starting with d-).",
                                 f"{where}.dynamic_template_data", "template_id"))
    if n_recipients > 1000:
        errors.append(_error("There is a limit of 1000 total recipients (to + cc + bcc) per "
                             "request.", "personalizations", "personalizations"))
    sender = mail.get("from")
    if not isinstance(sender, dict) or not EMAIL.match(str(sender.get("email", ""))):
        errors.append(_error("The from object must be provided for every email send. It is an "
                             "object that requires the email parameter, but may also contain "
                             "a name parameter.", "from", "from"))
    reply_to = mail.get("reply_to")
    if reply_to is not None and not EMAIL.match(str((reply_to or {}).get("email", ""))):
        errors.append(_error("The reply_to email does not contain a valid address.",
                             "reply_to.email", "reply_to"))
    content = mail.get("content")
    if not template:
        if not isinstance(content, list) or not content:
            errors.append(_error("Unless a valid template_id is provided, the content parameter "
                                 "is required. There must be at least one defined content "
                                 "block.", "content", "content"))
        else:
            for k, c in enumerate(content):
                if not isinstance(c, dict) or not c.get("type") or not c.get("value"):
                    errors.append(_error("The content value must be a string at least one "
                                         "character in length.", f"content.{k}.value",
                                         "content.value"))
            types = [c.get("type") for c in content if isinstance(c, dict)]
            if "text/plain" in types and types[0] != "text/plain":
                errors.append(_error("If present, text/plain content must be first, followed "
                                     "by any other content.", "content.0.type", "content.type"))
    categories = mail.get("categories") or []
    if len(categories) > 10 or len(set(categories)) != len(categories) or any(
            not isinstance(c, str) or len(c) > 255 for c in categories):
        errors.append(_error("The categories parameter may contain at most 10 unique "
                             "categories of at most 255 characters.", "categories", "categories"))
    return errors
