"""What `relance plan` shows of the managers' digests."""

from __future__ import annotations

from rich.table import Table

from relance.reasons import explain


def print_plan(console, ev, show: int = 10) -> None:
    rows = ev.con.execute(
        "select manager_email, locale, tz, week, n_listed, n_withheld, outcome, reason, "
        "not_before from eval_digests order by outcome, manager_email").fetchall()
    if not rows:
        console.print("Managers' digests: no learner of the audience has a manager in a "
                      "digest group")
        return
    table = Table(title=f"Managers' digests ({len(rows)} managers)", title_justify="left")
    for col, just in (("manager", "left"), ("locale", "left"), ("week", "left"),
                      ("team listed", "right"), ("control group", "right"),
                      ("outcome", "left"), ("when / why", "left")):
        table.add_column(col, justify=just)
    label = {"planned": "[green]send now[/]", "deferred": "[cyan]send later[/]",
             "suppressed": "[yellow]suppressed[/]"}
    for email, locale, tz, week, listed, withheld, outcome, reason, not_before in rows[:show]:
        when = (f"{not_before:%a %d %b %H:%M} UTC" if outcome == "deferred" and not_before
                else explain(reason))
        table.add_row(email, locale, week, str(listed), str(withheld), label[outcome], when)
    console.print(table)
    if len(rows) > show:
        console.print(f"[dim]… and {len(rows) - show} more managers[/dim]")
