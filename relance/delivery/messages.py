"""A planned learner's message as it goes out: its template context (context.sql, one query
for a whole batch) and the OutgoingMessage rendered from it, with its signed unsubscribe
link. Managers' digests have theirs in digests.py.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from typing import TYPE_CHECKING

import duckdb

import warehouse
from relance.campaign.loaded import LoadedCampaign
from relance.channels import OutgoingMessage
from relance.delivery import helpful, links
from relance.delivery.rendering import Renderer

if TYPE_CHECKING:                  # pyarrow (and numpy) load only where tables are made
    import pyarrow as pa

HERE = Path(__file__).parent


def _sql(name: str) -> str:
    return (HERE / f"{name}.sql").read_text(encoding="utf-8")


def context_rows(con: duckdb.DuckDBPyConnection, message_ids: list[str],
                 default_timezone: str, *, scoped: bool = False,
                 skipped: frozenset[str] = frozenset()) -> list[dict]:
    """The template context of each message, computed in one query for the batch. As
    DuckDB's Python values, not through Arrow: the same values (timestamps in UTC, as
    pytz's rather than zoneinfo's), as fast, and a preview of one message does not load
    pyarrow and numpy (a quarter of `relance preview`)."""
    # run, not made a relation (`con.sql`), which parsed and planned it once more for its
    # columns before it ran
    result = warehouse.run(con, *_context(con, message_ids, default_timezone, scoped, skipped))
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row)) for row in result.fetchall()]


def context_table(con: duckdb.DuckDBPyConnection, message_ids: list[str],
                  default_timezone: str, *, scoped: bool = False,
                  skipped: frozenset[str] = frozenset()) -> pa.Table:
    """context_rows as an Arrow table (what render workers are handed)."""
    # (a relation: Arrow from a run statement's result is one more copy of the rows)
    sql, params = _context(con, message_ids, default_timezone, scoped, skipped)
    return con.sql(sql, params=params).to_arrow_table()


def _context(con: duckdb.DuckDBPyConnection, message_ids: list[str], default_timezone: str,
             scoped: bool, skipped: frozenset[str] = frozenset()) -> tuple[str, dict]:
    """The context query of the messages `message_ids` and its parameters. `scoped`: the
    messages are among those of the last `scope()` on this connection (a delivery's), whose
    reading of the events is reused; else they are read for these messages alone.
    `skipped`: the tables that scope did not make (what it returned), read as empty
    stand-ins."""
    con.execute("create or replace temp table delivery_batch (message_id varchar primary key)")
    # one statement for the batch: executemany ran one insert per id (0.3 ms each, 0.6 s
    # of CPU for a batch of 2,000, more than the context query itself)
    con.execute("insert into delivery_batch select unnest(?::varchar[])", [message_ids])
    if not scoped:
        scope(con, "select message_id from delivery_batch")
    if not message_ids:
        message_ids = [""]      # no row: the query's slice is empty
    return _context_sql(skipped) if scoped else _sql("context"), {
        "timezone": default_timezone, "first": min(message_ids), "last": max(message_ids)}


def _context_sql(skipped: frozenset[str]) -> str:
    """context.sql, each table of `skipped` hidden by its stand-in (context_skipped.sql):
    a common table expression of the same name, put first."""
    sql = _sql("context")
    if not skipped:
        return sql
    stand_ins = [line for line in _sql("context_skipped").splitlines()
                 if line.split(" ", 1)[0] in skipped]
    head, with_, rest = re.split(r"^(with\s)", sql, maxsplit=1, flags=re.M)
    return head + with_ + ",\n".join(stand_ins) + ",\n" + rest


_SECTIONS = re.compile(r"^-- sections: ([a-z_ ]+)$", re.M)
_MADE = re.compile(r"create\s+or\s+replace\s+temp\s+table\s+(\w+)", re.I)


def sections_of(loaded: LoadedCampaign, keys) -> frozenset[str] | None:
    """The recap sections (`include:`) the messages `keys` of the campaign render; None
    (all of them) if one is not in the campaign file any more (it fails at rendering)."""
    messages = loaded.campaign.messages
    if any(k not in messages for k in keys):
        return None
    return frozenset(section for k in keys for section in messages[k].include)


def scope(con: duckdb.DuckDBPyConnection, messages: str, params: list | None = None,
          loaded: LoadedCampaign | None = None) -> frozenset[str]:
    """Read, once, what the context of the messages `messages` (a query giving their ids)
    needs from the events and contributions (context_scope.sql); each batch's context
    query then reads that rather than the events. With the campaign (`loaded`), what only
    recap sections none of the messages includes show is not read (most deliveries'
    messages include none: 6 statements of 8); the tables not made are returned, for
    context_rows and context_table (`skipped`)."""
    warehouse.run(con, f"create or replace temp table delivery_scope as {messages}", params or [])
    bounds = None
    sections: frozenset[str] | None = None
    skipped: set[str] = set()
    for statement in warehouse.statements(_sql("context_scope")):
        marked = _SECTIONS.search(statement)
        if marked and sections is not None and sections.isdisjoint(marked[1].split()):
            skipped.add(_MADE.search(statement)[1])
            continue
        moments = None
        code = re.sub(r"--[^\n]*", "", statement)
        if "$latest" in code:
            # the scope's moments, read once ctx_scope is made (and once: three statements
            # use them)
            if bounds is None:
                bounds = con.execute("select min(as_of) - interval 7 day, max(as_of) "
                                     "from ctx_scope").fetchall()[0]
            moments = {k: v for k, v in zip(("earliest", "latest"), bounds) if f"${k}" in code}
        warehouse.run(con, statement, moments)
        if loaded is not None and sections is None and _MADE.search(statement)[1] == "ctx_due":
            sections = sections_of(loaded, [r[0] for r in con.execute(
                "select distinct message_key from ctx_due").fetchall()])
    return frozenset(skipped)


def template_context(loaded: LoadedCampaign, row: dict) -> dict:
    campaign = loaded.campaign
    msg = campaign.messages[row["message_key"]]
    ctx = {
        "learner": row["learner"],
        "course": row["course"],
        "progress": row["progress"],
        "stage": row["stage"],
        "campaign": {"id": campaign.id},
        "sender": {"name": campaign.sender.name, "email": campaign.sender.email},
        "unsubscribe_url": links.url(row["learner_id"], campaign.id),
        "as_of": row["as_of"],
    }
    if msg.helpful:
        ctx |= helpful.urls(row["message_id"])
    if msg.on_milestone:
        ctx["milestone"] = float(row["trigger"].split(":", 1)[1])
    if msg.on_activity:
        ctx["activity"] = row["activity"]
    for section in msg.include:
        ctx[section] = row[section]
    return ctx


def outgoing(loaded: LoadedCampaign, renderer: Renderer, row: dict, *,
             date: datetime | None = None) -> OutgoingMessage:
    """The message of a ledger row, rendered; dated `date` (a delivery's send moment), or
    its planned moment when shown before any send (previews)."""
    campaign = loaded.campaign
    ctx = template_context(loaded, row)
    rendered = renderer.render(row["message_key"], row["locale"], ctx, row.get("variant"))
    text, html = rendered.text, rendered.html
    if "helpful_yes_url" in ctx:
        text, html = helpful.with_links(text, html, ctx, row["locale"])
    return OutgoingMessage(
        message_id=row["message_id"],
        campaign_id=campaign.id,
        to_email=row["to_email"],
        to_name=row["learner"]["name"] or "",
        from_email=campaign.sender.email,
        from_name=campaign.sender.name,
        reply_to=(links.reply_address(campaign.replies.address, row["message_id"])
                  if campaign.replies is not None else campaign.reply_to),
        subject=rendered.subject,
        text=text,
        html=html,
        unsubscribe_url=ctx["unsubscribe_url"],
        unsubscribe_mailto=links.mailto(campaign.sender.email, campaign.id),
        date=date or row["not_before"],
        message_key=row["message_key"],
        locale=row["locale"],
        template_data=ctx if row["message_key"] in _dynamic_templates(campaign) else None,
    )


def _dynamic_templates(campaign) -> dict:
    return campaign.sendgrid.templates if campaign.channel == "sendgrid" else {}
