"""The ROI commands of `relance`: report, export, backtest, risk train. `relance/cli/__init__.py`
calls `register` with `relance.cli.main`, so these reuse its options and helpers."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Optional

import typer
from rich.table import Table


def register(cli: ModuleType) -> None:
    app, console = cli.app, cli.console
    _register_risk(cli)

    @app.command()
    def report(
        campaign: Optional[str] = typer.Argument(None, help="Campaign id."),
        cohort: Optional[str] = typer.Option(None, "--cohort", help="Report on a cohort instead."),
        programme: bool = typer.Option(False, "--programme",
                                       help="One page across every campaign and cohort."),
        locale: Optional[str] = typer.Option(None, "--locale",
                                             help="fr or en [default: the campaign's team "
                                                  "locale, else its learners' majority]."),
        pdf: bool = typer.Option(False, "--pdf", help="Also print the page to a PDF beside it "
                                                      "(headless Chromium)."),
        output: Optional[Path] = typer.Option(None, "--output", "-o",
                                              help="HTML file [default: reports/<campaign>.html]."),
        warehouse: Optional[Path] = cli.WarehouseOpt,
        campaigns_dir: Optional[Path] = cli.CampaignsOpt,
    ):
        """Write a self-contained HTML report (and a PNG per chart, and with --pdf a PDF) for
        a campaign, a cohort or the whole programme, in the reader's language: what is known
        first, the effect against the control group, what it would take to see more, dropout
        over time, each message's effect, what was sent.

        Example: relance report parcours-anglais --locale fr --pdf
        """
        def body():
            from relance.campaign import loader
            from relance.roi import i18n
            from relance.roi import report as reporting
            from relance.roi.costs import load_costs
            s = cli._settings(warehouse, campaigns_dir)
            if sum(bool(x) for x in (campaign, cohort, programme)) != 1:
                raise cli.Fail("name a campaign (relance report parcours-anglais), a cohort "
                               "(relance report --cohort 2026-09) or --programme")
            if locale is not None and locale not in i18n.LOCALES:
                raise cli.Fail(f"--locale {locale}: the report is written in "
                               f"{' and '.join(i18n.LOCALES)}; use --locale fr or --locale en")
            stage_order, team_locale = None, None
            if campaign:
                try:
                    c = loader.load(loader.find(s.campaigns, campaign),
                                    campaigns_dir=s.campaigns).campaign
                    stage_order = list(c.stages)
                    team_locale = c.team.locale if c.team is not None else None
                except loader.CampaignError:
                    pass     # a campaign file since removed still has its history
            con = cli._connect(s)
            key = campaign or (f"cohort-{cohort}" if cohort else "programme")
            out = output or Path("reports") / f"{key}.html"
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                if programme:
                    rep = reporting.gather_programme(con, png_dir=out.parent, stem=out.stem,
                                                     locale=locale)
                else:
                    rep = reporting.gather(con, campaign=campaign, cohort=cohort,
                                           costs=load_costs(s.campaigns), stage_order=stage_order,
                                           png_dir=out.parent, stem=out.stem, locale=locale,
                                           team_locale=team_locale)
            except reporting.ReportError as exc:
                raise cli.Fail(str(exc)) from None
            finally:
                con.close()          # the PDF and the reader need no warehouse: let it go
            reporting.write(rep, out)
            f = rep.fmt
            console.print(f"[bold]{rep.title}[/bold] ({rep.subtitle}; {rep.locale})",
                          soft_wrap=True)
            if rep.scope != "programme" and rep.live:
                h = rep.headline
                console.print(f"  {f.int(h['enrolled'])} enrolled, completion "
                              f"{f.pct(h['completion_rate'])}, dropout {f.pct(h['dropout_rate'])}")
                if rep.verdict:
                    console.print(f"  {rep.verdict['text']}", soft_wrap=True)
            elif rep.scope != "programme":
                console.print(f"  no live run yet, {len(rep.backtests)} backtest(s)")
            e = rep.estimate
            if e and rep.verdict.get("case") in ("clear_gain", "clear_loss") \
                    and rep.verdict.get("euros"):
                console.print(f"  worth {f.money(e.net_low)} to {f.money(e.net_high)} net, "
                              "assuming:")
                for a in e.assumptions:
                    console.print(f"    - {a}", soft_wrap=True)
            console.print(f"Report written to [bold]{out}[/bold] with "
                          f"{len(rep.charts)} charts as PNG beside it.")
            if pdf:
                from relance.roi.pdf import PdfError, to_pdf
                try:
                    with console.status("Printing the PDF (headless Chromium)…"):
                        written = to_pdf(out)
                except PdfError as exc:
                    raise cli.Fail(str(exc)) from None
                console.print(f"PDF: [bold]{written}[/bold]")
        cli._main(body)

    @app.command()
    def export(
        folder: Path = typer.Argument(Path("exports"), help="Folder to write to."),
        fmt: str = typer.Option("parquet", "--format", "-f", help="parquet or csv."),
        view: Optional[list[str]] = typer.Option(None, "--view", help="Only these KPI views."),
        warehouse: Optional[Path] = cli.WarehouseOpt,
    ):
        """Export the KPI views (kpi_*) as Parquet or CSV files, one per view, for BI tools.

        Example: relance export exports --format csv
        """
        def body():
            from relance.roi import export as exporting
            s = cli._settings(warehouse)
            con = cli._connect(s)
            try:
                written = exporting.export(con, folder, fmt, view or None)
            except ValueError as exc:
                raise cli.Fail(str(exc)) from None
            table = Table(title=f"KPI views exported as {fmt}", title_justify="left")
            table.add_column("view")
            table.add_column("file")
            table.add_column("rows", justify="right")
            for name, path, rows in written:
                table.add_row(name, str(path), str(rows))
            console.print(table)
        cli._main(body)

    @app.command(name="backtest")
    def backtest_command(
        campaign: str = typer.Argument(..., help="Campaign id."),
        source: str = typer.Option("warehouse", "--source",
                                   help="'warehouse' (its own past cohorts), or a source the "
                                        "connectors open (a CSV export's mapping.yaml, 'oulad')."),
        presentation: Optional[str] = typer.Option(None, "--presentation",
                                                   help="Only courses or cohorts of this "
                                                        "presentation, e.g. 2013J."),
        alert: Optional[list[str]] = typer.Option(None, "--alert",
                                                  help="Messages that count as reaching a learner "
                                                       "at risk [default: those of stages at risk]."),
        lead_days: int = typer.Option(7, "--lead-days", help="Reached in time: at least this many "
                                                             "days before withdrawing."),
        train: Optional[str] = typer.Option(None, "--train",
                                            help="First fit the risk model on this earlier "
                                                 "presentation (e.g. 2013B); its AUC by course "
                                                 "week is printed."),
        sources: Optional[Path] = typer.Option(None, "--sources", envvar="RELANCE_SOURCES",
                                               help="The sources file naming --source "
                                                    "[default: sources.yaml]."),
        data: Optional[Path] = typer.Option(None, "--data",
                                            help="With --source oulad: the folder of your "
                                                 "OULAD-shaped files (courses.csv, "
                                                 "assessments.csv, studentInfo.csv, "
                                                 "studentRegistration.csv, studentAssessment.csv), "
                                                 "read in place [default: the sources file's "
                                                 "oulad entry, else ../shared/data/oulad-2013]."),
        warehouse: Optional[Path] = cli.WarehouseOpt,
        campaigns_dir: Optional[Path] = cli.CampaignsOpt,
    ):
        """Replay a campaign every Monday over a past cohort: what it would have sent, and
        how early it reached the learners who later withdrew. With a Prefect server
        configured (PREFECT_API_URL), a flow run on it; otherwise the same steps in this
        process, with no Prefect server to start.

        Example: relance backtest oulad-alerte --source oulad --data ~/oulad --presentation 2013J
        """
        def body():
            from connectors import SourceError
            from flows._common import shared_server
            from relance.roi.backtest import BacktestError
            s = cli._settings(warehouse, campaigns_dir)
            loaded = cli._load(s, campaign)        # a broken campaign stops here, located
            con = cli._connect(s, must_exist=False)
            try:
                if shared_server():
                    con.close()                    # the flow's tasks open it in their turn
                    r = _backtest_flow(console, campaign, source, presentation, s, alert,
                                       lead_days, train, sources, data)
                else:
                    r = _backtest_here(console, con, loaded, source, presentation, alert,
                                       lead_days, train, sources, data)
            except (BacktestError, SourceError) as exc:
                raise cli.Fail(str(exc)) from None
            finally:
                con.close()
            _print_backtest(console, r)
        cli._main(body)


def _backtest_flow(console, campaign, source, presentation, s, alert, lead_days, train, sources,
                   data=None):
    from flows.backtest import backtest as backtest_flow
    with console.status(f"Replaying {campaign} every Monday (Prefect flow)…"):
        return backtest_flow(campaign, source, presentation, str(s.warehouse), str(s.campaigns),
                             alert or None, lead_days, 14, train,
                             str(sources) if sources else None,
                             str(data) if data else None)


def _backtest_here(console, con, loaded, source, presentation, alert, lead_days, train, sources,
                   data=None):
    """The flow's two steps as library calls (relance/roi/backtest.py): the same rows in
    the warehouse, without the temporary Prefect server a flow call would start."""
    from relance.roi import backtest as bt
    with console.status(f"Preparing the cohort of {loaded.id} ({source})…") as status:
        cohort = bt.prepare_cohort(con, loaded, source, presentation, train,
                                   str(sources) if sources else None, data)

        def on_week(i, n, as_of):
            status.update(f"Replaying {loaded.id}: Monday {i}/{n} ({as_of:%Y-%m-%d})…")
        status.update(f"Replaying {loaded.id} every Monday…")
        return bt.replay_cohort(con, loaded, cohort, source=source, presentation=presentation,
                                train=train, alerts=alert or None, lead_days=lead_days,
                                on_week=on_week)


def _print_backtest(console, r: dict) -> None:
    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f} %"
    console.print(f"[bold]Backtest {r['backtest_id']}[/bold]: {r['campaign_id']} replayed over "
                  f"{r['n_weeks']} Mondays on {', '.join(r['courses'])}, {r['n_learners']} learners")
    table = Table(title="Against what really happened", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row(f"withdrawers (left on day ≥ {r['early_leaver_days']}) reached ≥ {r['lead_days']} "
                  "days before", f"{pct(r['reached_share'])} ({r['n_reached']}/{r['n_withdrawers']})")
    table.add_row("passers flagged (false alarms)",
                  f"{pct(r['false_alarm_share'])} ({r['n_flagged_passers']}/{r['n_passers']})")
    table.add_row(f"early leavers (before day {r['early_leaver_days']}) reached",
                  f"{r['n_early_reached']}/{r['n_early_leavers']}")
    table.add_row("messages per learner per week", f"{(r['messages_per_learner_week'] or 0):.3f}")
    table.add_row("alert messages", ", ".join(r["alert_messages"]))
    console.print(table)
    if r.get("auc"):
        m = r.get("risk_model") or {}
        if m:
            console.print(f"Risk model [bold]{m['model_id']}[/bold]: trained on {m['trained_on']} "
                          f"on {m['created_at']:%Y-%m-%d %H:%M} UTC ({m['n_rows']} learner-weeks, "
                          f"{m['n_positive']} withdrew later), {m['fitted_with'] or 'fitted in numpy'}; "
                          f"features: {', '.join(m['features'])}", soft_wrap=True)
        auc = Table(title="Risk score: AUC by course week"
                          + (f", model {m['model_id']}" if m else ""), title_justify="left")
        for col in ("course week", "learners", "withdrawers", "AUC"):
            auc.add_column(col, justify="right")
        for w, n, k, a in r["auc"]:
            auc.add_row(str(w), str(n), str(k), "n/a" if a is None else f"{a:.3f}")
        console.print(auc)
    console.print("[dim]Results are in the warehouse: backtest_runs, backtest_learners, "
                  "backtest_messages, backtest_weeks.[/dim]")


def _register_risk(cli: ModuleType) -> None:
    risk_app = typer.Typer(help="The risk score: an early-warning measure (`risk`) for stages.",
                           no_args_is_help=True)
    cli.app.add_typer(risk_app, name="risk")
    console = cli.console

    @risk_app.command("train")
    def train(
        presentation: str = typer.Option(..., "--presentation",
                                         help="Train on the courses of this past presentation "
                                              "(course id or cohort containing it, e.g. 2013B)."),
        source: str = typer.Option("warehouse", "--source",
                                   help="'warehouse', or a source the connectors open ('oulad')."),
        sources: Optional[Path] = typer.Option(None, "--sources", envvar="RELANCE_SOURCES",
                                               help="The sources file [default: sources.yaml]."),
        data: Optional[Path] = typer.Option(None, "--data",
                                            help="With --source oulad: the folder of your "
                                                 "OULAD-shaped files, read in place."),
        warehouse: Optional[Path] = cli.WarehouseOpt,
    ):
        """Fit the risk score on a past presentation and store it in the warehouse; stages
        can then say `risk: ">= 0.25"`.

        Example: relance risk train --source oulad --presentation 2013B
        """
        def body():
            import shutil

            import warehouse as wh
            from connectors import SourceError
            from relance.roi import backtest as bt
            from relance.roi import risk
            s = cli._settings(warehouse)
            con = cli._connect(s, must_exist=source == "warehouse")
            try:
                with console.status(f"Training the risk score on {presentation}…"):
                    if source == "warehouse":
                        courses = bt.presentation_courses(con, presentation)
                        scratch = bt.scratch_from_warehouse(con, courses)
                    else:
                        scratch = bt.scratch_from_source(source, con, sources_file=sources,
                                                         presentations=[presentation], data=data)
                    held = wh.connect(scratch)
                    try:
                        courses = bt.presentation_courses(held, presentation)
                        first, last = bt.course_span(held, courses)
                        model = risk.train(held, courses, bt.mondays(first, last),
                                           trained_on=f"{source} {presentation}", save_to=[con])
                    finally:
                        held.close()
                        shutil.rmtree(scratch.parent, ignore_errors=True)
            except (bt.BacktestError, risk.RiskError, SourceError) as exc:
                raise cli.Fail(str(exc)) from None
            table = Table(title=f"Risk model {model.model_id} ({model.trained_on}: "
                                f"{model.n_rows} learner-weeks, {model.n_positive} withdrew later)",
                          title_justify="left")
            table.caption = model.fitted_with
            table.add_column("feature (standardised)")
            table.add_column("coefficient", justify="right")
            table.add_row("(intercept)", f"{model.intercept:+.3f}")
            for name, value in model.coefficients.items():
                table.add_row(name, f"{value:+.3f}")
            console.print(table)
            console.print(f"Stored in {s.warehouse} (risk_models, risk_coefficients); campaigns "
                          "whose stages name `risk` use it from their next evaluation.")
        cli._main(body)
