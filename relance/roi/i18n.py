"""The report in the reader's language: its words (one catalogue per locale, the same keys)
and its numbers, dates and money through Babel, one format per locale ("−15 622 €" in
French, "−€15,622" in English; a true minus sign in both)."""

from __future__ import annotations

import datetime as dt

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers

LOCALES = ("fr", "en")
MINUS = "\u2212"


class Fmt:
    """Numbers of one locale. Every figure of the page goes through one of these."""

    def __init__(self, locale: str, currency: str = "EUR"):
        if locale not in LOCALES:
            raise ValueError(f"no report strings for locale {locale!r}: use one of "
                             f"{', '.join(LOCALES)}")
        self.locale = locale
        self.currency = currency
        self._percent = Locale.parse(locale).percent_formats[None].pattern

    def _minus(self, text: str) -> str:
        return text.replace("-", MINUS)

    def int(self, value) -> str:
        return "–" if value is None else self._minus(babel_numbers.format_decimal(
            round(value), locale=self.locale))

    def num(self, value, digits: int = 1) -> str:
        if value is None:
            return "–"
        return self._minus(babel_numbers.format_decimal(
            round(value, digits), format=f"#,##0.{'0' * digits}" if digits else "#,##0",
            locale=self.locale))

    def pct(self, value, digits: int = 1) -> str:
        """A share 0..1 as a percentage ('31,6 %' / '31.6%')."""
        if value is None:
            return "–"
        pattern = _with_digits(self._percent, digits)
        return self._minus(babel_numbers.format_percent(value, format=pattern, locale=self.locale))

    def points(self, value, digits: int = 1) -> str:
        """A difference of two shares, in percentage points, signed ('+2,1 pts')."""
        if value is None:
            return "–"
        sign = "+" if round(100 * value, digits) > 0 else ""
        return f"{sign}{self.num(100 * value, digits)}\u00a0{STRINGS[self.locale]['pts']}"

    def money(self, value) -> str:
        if value is None:
            return "–"
        fmt = "#,##0\u00a0¤" if self.locale == "fr" else "¤#,##0"
        return self._minus(babel_numbers.format_currency(
            round(value), self.currency, format=fmt, currency_digits=False, locale=self.locale))

    def date(self, value: dt.date | None) -> str:
        if value is None:
            return "–"
        return babel_dates.format_date(value, format="long", locale=self.locale)

    def short_date(self, value: dt.date | None) -> str:
        """A chart's tick: '30 nov.' / 'Nov 30'."""
        if value is None:
            return "–"
        return babel_dates.format_date(value, format="d MMM" if self.locale == "fr" else "MMM d",
                                       locale=self.locale)

    def datetime(self, value: dt.datetime | None) -> str:
        if value is None:
            return "–"
        return babel_dates.format_datetime(value, format="d MMMM y HH:mm" if self.locale == "fr"
                                           else "MMMM d, y HH:mm", tzinfo=None,
                                           locale=self.locale) + " UTC"


def _with_digits(pattern: str, digits: int) -> str:
    """The locale's percent pattern ('#,##0 %') with `digits` decimals ('#,##0.0 %')."""
    if not digits:
        return pattern
    i = pattern.rindex("0")
    return pattern[:i + 1] + "." + "0" * digits + pattern[i + 1:]


def t(locale: str, key: str, **values) -> str:
    text = STRINGS[locale][key]
    return text.format(**values) if values else text


# One catalogue per locale, the same keys in each (tests/test_roi_report.py checks).
STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "pts": "pts",
        "campaign": "campaign",
        "cohort": "cohort",
        "cohorts": "cohorts",
        "report_of": "relance report",
        "programme_title": "Programme: every campaign and cohort",
        "measured_as_of": "Measured as of {when}. Every figure is a view of the warehouse "
                          "(kpi_*); definitions in docs/roi.md.",
        "not_live": "No live run yet: this campaign has only been backtested; its results are below.",
        "in_short": "In short",
        # the headline
        "too_early": "Too early to tell: with {treated} learners treated and {control} in the "
                     "control group, a difference in completion smaller than {mde_completion} "
                     "or in dropout smaller than {mde_dropout} cannot be seen yet.",
        "too_early_one": "Too early to tell: with {treated} learners treated and {control} in the "
                         "control group, a difference smaller than {mde} cannot be seen yet.",
        "no_control": "No control group to compare with: the campaign's effect cannot be measured "
                      "(set control_group in the campaign file).",
        "clear_gain": "The campaign helps: {outcome_phrase} {diff} with the campaign (95% "
                      "interval {low} to {high}), {treated} learners treated, {control} in the "
                      "control group.",
        "clear_loss": "The campaign does harm: {outcome_phrase} {diff} with the campaign (95% "
                      "interval {low} to {high}), {treated} learners treated, {control} in the "
                      "control group.",
        "phrase_completion": "completion is",
        "phrase_dropout": "dropout is",
        "worth_range": "Worth between {low} and {high} net, on the assumptions below.",
        "worth_hidden": "No euro figure yet: euros are shown, as a range, once the completion "
                        "interval excludes zero.",
        "cost_per_completion": "Cost per completion: {treated} with the campaign, {control} without.",
        "cost_per_completion_later": "Cost per completion: once the course has ended ({end}).",
        "assumptions": "Assumptions",
        "a_value": "value of a completion: {v}",
        "a_seat": "cost per seat: {v}",
        "a_cm": "community manager: {h} h per treated learner at {v}/h",
        "a_message": "cost per message: {v}",
        "a_counts": "{n} treated learners, {m} messages sent",
        "a_formula": "extra completions = (treated completion rate − control completion rate) × "
                     "treated learners; low and high from the difference's 95% interval",
        "a_source": "source: {v}",
        "what_it_is_worth": "What it is worth",
        # tiles
        "at_a_glance": "At a glance",
        "enrolled": "learners enrolled",
        "started": "started ({n})",
        "completed": "completed ({n})",
        "certified": "certified ({n} of {of})",
        "no_certifying": "certified: no certifying activity",
        "dropped_out_tile": "dropped out ({n})",
        # dropout definition
        "dropout_definition": "Dropped out: withdrew, or no activity for 21 days or more — the "
                              "stages' rule (inactive_days ≥ 21). Learners who never started count "
                              "from their enrolment.",
        "dropout_reconcile": "The {dropped} who dropped out are {parts}: the same rule as the "
                             "stages, which put learners who never started in a stage of their "
                             "own first.",
        "dropout_part": "{n} in stage {stage}",
        "dropout_withdrew": "{n} who withdrew",
        # control
        "effect_title": "Effect against the control group",
        "effect_intro": "Treated: learners the campaign was for, messaged or not; control: the "
                        "stable random holdout it never messaged. Difference = treated − "
                        "control, with its 95% interval (Newcombe's hybrid score method).",
        "whole_campaign": "whole campaign",
        "scope": "scope",
        "outcome": "outcome",
        "treated": "treated",
        "control": "control",
        "difference": "difference",
        "interval": "95% interval",
        "reading": "reading",
        "to": "to",
        "completion": "completion",
        "dropout": "dropout",
        "reengagement": "active again within 7 days",
        "too_small": "too few learners to tell",
        "no_clear_difference": "no clear difference (the interval contains zero)",
        "higher_with_campaign": "higher with the campaign",
        "lower_with_campaign": "lower with the campaign",
        "better": "better",
        "worse": "worse",
        "too_small_note": "Rows marked “too few” have under 30 learners in a group or under 5 "
                          "with or without the outcome: their interval is not to be trusted.",
        # planning
        "planning_title": "Planning the evidence",
        "planning_intro": "How small a difference these groups can see (two-sided test at 5%, "
                          "power 80%) and what seeing +2 points would take. Published nudge "
                          "experiments at scale find effects of 0 to 2 points on completion.",
        "rate_now": "rate now",
        "planning_running": "The course is still running: completion will rise until it ends, "
                            "and with it the smallest difference these groups can see (it is "
                            "largest for a rate of 50%).",
        "mde": "smallest visible difference",
        "needed_n": "+2 pts: learners needed (control {share})",
        "needed_share": "+2 pts: control share needed ({n} learners)",
        "unreachable": "not enough even at 50%",
        "pooled_title": "All cohorts together",
        "pooled_intro": "Fixed-effect (inverse-variance) estimate over the campaign's cohorts "
                        "and courses: each new cohort adds to the evidence.",
        "strata": "cohorts",
        "pooled": "pooled difference",
        "left_out_strata": "{n} left out (no outcome on either side yet)",
        # survival
        "survival_note": "Kaplan–Meier estimate: the curve stops at course week {week}, the last "
                         "week ending 21 days before {as_of}; a learner seen since may still "
                         "come back, and is censored there rather than counted as staying.",
        # messages
        "per_message_title": "Effect of each message",
        "per_message_intro": "Re-engagement (any activity within 7 days of when the message "
                             "could first go out) of the learners each message was proposed "
                             "to, against the control group's learners in the same stage, at "
                             "its first proposal.",
        "holm_note": "{m} comparisons are read at once: their verdicts use Holm's correction "
                     "(adjusted p-value under 0.05), so one chance “better” among many is not "
                     "taken for an effect.",
        "adjusted_p": "Holm p",
        "left_out_title": "Left out",
        "circular_dropout": "{message}: dropout, because every learner it was proposed to had "
                            "already dropped out (silent 21+ days) when it was; the comparison "
                            "would measure the stage that triggers it, not the message.",
        "circular_completion": "{message}: completion and dropout, because every learner it was "
                               "proposed to had already completed when it was.",
        "outcomes_per_message": "Completion and dropout of the learners each message was "
                                "proposed to",
        "sent_title": "What was sent",
        "message": "message",
        "sent": "sent",
        "failed": "failed",
        "cancelled": "cancelled",
        "waiting": "waiting",
        "delivered": "delivered",
        "opened": "opened",
        "clicked": "clicked",
        "active_after": "active within 7 days (no comparison)",
        "sent_note": "“Active within 7 days” describes who was active after a message, not what "
                     "the message did: the comparison with the control group is above.",
        "no_events_note": "Delivered, opened and clicked are not shown: this channel reports no "
                          "such events (the outbox).",
        "nothing_sent": "No message in the ledger yet.",
        "variants_title": "Variants (test and learn)",
        "variant": "variant",
        "metric": "metric",
        "rate": "rate",
        "others": "the others",
        "variant_wins": "{variant} wins on {metric}",
        "no_winner_yet": "no winner yet.",
        "variant_too_early": "too early to tell",
        "variant_no_clear_difference": "no clear difference yet",
        "variant_winner": "ahead of the others: a winner",
        "variant_behind": "behind the others",
        "metric_opened": "opened",
        "metric_clicked": "clicked",
        "metric_reengaged_7d": "re-engaged within 7 days",
        "metric_completion": "completion",
        "variants_holm_note": "{m} comparisons of variants are read at once: a winner stands "
                              "only if Holm's adjusted p-value is under 0.05, so one chance lead "
                              "among many is not taken for a winner.",
        "charts_title": "Charts",
        # charts
        "chart_weekly": "Weekly active learners by stage",
        "chart_survival": "Dropout over the course (Kaplan–Meier)",
        "chart_funnel": "Funnel",
        "chart_messages": "Messages by outcome",
        "chart_backtest": "Backtest: stages and messages each Monday",
        "chart_forest": "Effect of each campaign, cohort by cohort",
        "active_in_week": "learners active in the week",
        "course_week": "course week",
        "dropped_out_pct": "dropped out (%)",
        "learners": "learners",
        "messages": "messages",
        "all learners": "all learners",
        "treated_group": "treated",
        "control_group": "control",
        "all_group": "all",
        "funnel_enrolled": "enrolled",
        "funnel_started": "started",
        "funnel_not_dropped_out": "not dropped out",
        "funnel_completed": "completed",
        "funnel_certified": "certified",
        "no_run": "No campaign run yet",
        "no_learners": "No learners evaluated yet",
        "no_message": "No message sent yet",
        "png": "PNG",
        "backtests_title": "Backtests",
        "backtest": "backtest",
        "bt_reached": "withdrawers reached ≥{days} days before",
        "bt_flagged": "passers flagged",
        "bt_early": "early leavers reached",
        "bt_rate": "messages / learner / week",
        "bt_note": "Reached: eventual withdrawers (who left on course day {early} or later) who "
                   "got an alert message ({messages}) at least {days} days before unregistering. "
                   "Passers flagged: completers who got one. Details in backtest_learners and "
                   "backtest_messages.",
        "bt_auc": "Risk score AUC by course week ({backtest}, model {model}):",
        "week_auc": "week {week}: {auc}",
        "programme_intro": "Every campaign of the warehouse, cohort by cohort: learners, "
                           "completion, dropout and the difference the campaign made, "
                           "pooled across cohorts.",
        "footer": "Generated by relance report. Self-contained: no script, no network.",
        "course": "course",
        "helpful_title": "Was this helpful?",
        "helpful_answers": "answers",
        "helpful_yes": "yes",
        "helpful_no": "no",
        "helpful_share": "share of yes",
        "helpful_comments": "comments",
        "helpful_withheld": "{n} withheld: fewer than {min} answers",
        "helpful_note": "Learners' answers to \"was this helpful?\" (one per message: its last). "
                        "Comments are shown only for a message with at least {min} answers, so "
                        "that none can be traced to the few who wrote "
                        "(RELANCE_HELPFUL_MIN_ANSWERS).",
        "contacted_title": "Contacted by the team, or not (observational)",
        "contacted_group": "learners on the follow-up list",
        "contacted_learners": "learners",
        "contacted_completed": "completed",
        "contacted_withdrew": "withdrew",
        "contacted_silent": "silent",
        "contacted_active": "active within 14 days",
        "contacted_yes": "contacted",
        "contacted_no": "not contacted",
        "contacted_note": "Observational, not randomised: people choose whom they call, so these "
                          "groups differed before any call and the gap is no measure of what "
                          "calling does. Contacted: reached by a person of the team (relance "
                          "desk; \"no answer\" does not count) after the learner was listed.",
    },
    "fr": {
        "pts": "pts",
        "campaign": "campagne",
        "cohort": "cohorte",
        "cohorts": "cohortes",
        "report_of": "rapport relance",
        "programme_title": "Programme : toutes les campagnes et cohortes",
        "measured_as_of": "Mesuré au {when}. Chaque chiffre est une vue de l'entrepôt (kpi_*) ; "
                          "définitions dans docs/roi.md.",
        "not_live": "Pas encore de campagne en cours : elle n'a été que rejouée sur le passé ; "
                    "les résultats sont plus bas.",
        "in_short": "En bref",
        "too_early": "Trop tôt pour conclure : avec {treated} apprenants suivis et {control} dans "
                     "le groupe témoin, une différence de complétion inférieure à "
                     "{mde_completion} ou d'abandon inférieure à {mde_dropout} ne peut pas "
                     "encore se voir.",
        "too_early_one": "Trop tôt pour conclure : avec {treated} apprenants suivis et {control} "
                         "dans le groupe témoin, une différence inférieure à {mde} ne peut pas "
                         "encore se voir.",
        "no_control": "Pas de groupe témoin : l'effet de la campagne ne peut pas se mesurer "
                      "(indiquer control_group dans le fichier de campagne).",
        "clear_gain": "La campagne aide : {outcome_phrase} {diff} avec la campagne (intervalle "
                      "à 95 % de {low} à {high}), {treated} apprenants suivis, {control} dans le "
                      "groupe témoin.",
        "clear_loss": "La campagne nuit : {outcome_phrase} {diff} avec la campagne (intervalle "
                      "à 95 % de {low} à {high}), {treated} apprenants suivis, {control} dans le "
                      "groupe témoin.",
        "phrase_completion": "la complétion est à",
        "phrase_dropout": "l'abandon est à",
        "worth_range": "Gain net entre {low} et {high}, selon les hypothèses ci-dessous.",
        "worth_hidden": "Pas encore de montant en euros : il apparaît, sous forme de fourchette, "
                        "quand l'intervalle de la complétion exclut zéro.",
        "cost_per_completion": "Coût par apprenant ayant terminé : {treated} avec la campagne, "
                               "{control} sans.",
        "cost_per_completion_later": "Coût par apprenant ayant terminé : à la fin du cours ({end}).",
        "assumptions": "Hypothèses",
        "a_value": "valeur d'un parcours terminé : {v}",
        "a_seat": "coût d'une place : {v}",
        "a_cm": "animateur de communauté : {h} h par apprenant suivi à {v}/h",
        "a_message": "coût d'un message : {v}",
        "a_counts": "{n} apprenants suivis, {m} messages envoyés",
        "a_formula": "parcours terminés en plus = (taux de complétion des suivis − taux du "
                     "témoin) × apprenants suivis ; bornes basse et haute selon l'intervalle à "
                     "95 % de la différence",
        "a_source": "source : {v}",
        "what_it_is_worth": "Ce que cela rapporte",
        "at_a_glance": "En un coup d'œil",
        "enrolled": "apprenants inscrits",
        "started": "ont commencé ({n})",
        "completed": "ont terminé ({n})",
        "certified": "certifiés ({n} sur {of})",
        "no_certifying": "certifiés : aucune activité certifiante",
        "dropped_out_tile": "ont abandonné ({n})",
        "dropout_definition": "Abandon : désinscrit, ou aucune activité depuis 21 jours ou plus — "
                              "la règle des étapes (inactive_days ≥ 21). Un apprenant qui n'a "
                              "jamais commencé compte depuis son inscription.",
        "dropout_reconcile": "Les {dropped} abandons se répartissent ainsi : {parts} ; c'est la "
                             "règle des étapes, qui rangent d'abord ceux qui n'ont jamais "
                             "commencé dans une étape à eux.",
        "dropout_part": "{n} dans l'étape {stage}",
        "dropout_withdrew": "{n} désinscrits",
        "effect_title": "Effet mesuré contre le groupe témoin",
        "effect_intro": "Suivis : les apprenants visés par la campagne, relancés ou non ; témoin : "
                        "le tirage aléatoire stable jamais relancé. Différence = suivis − "
                        "témoin, avec son intervalle à 95 % (méthode hybride de Newcombe).",
        "whole_campaign": "toute la campagne",
        "scope": "périmètre",
        "outcome": "résultat",
        "treated": "suivis",
        "control": "témoin",
        "difference": "différence",
        "interval": "intervalle à 95 %",
        "reading": "lecture",
        "to": "à",
        "completion": "complétion",
        "dropout": "abandon",
        "reengagement": "de retour sous 7 jours",
        "too_small": "trop peu d'apprenants pour conclure",
        "no_clear_difference": "pas de différence nette (l'intervalle contient zéro)",
        "higher_with_campaign": "plus élevé avec la campagne",
        "lower_with_campaign": "plus bas avec la campagne",
        "better": "mieux",
        "worse": "moins bien",
        "too_small_note": "Les lignes « trop peu » ont moins de 30 apprenants dans un groupe ou "
                          "moins de 5 avec ou sans le résultat : leur intervalle n'est pas fiable.",
        "planning_title": "Préparer la preuve",
        "planning_intro": "La plus petite différence que ces groupes peuvent voir (test "
                          "bilatéral à 5 %, puissance 80 %) et ce qu'il faudrait pour voir +2 "
                          "points. Les expériences de relance publiées à grande échelle "
                          "trouvent des effets de 0 à 2 points sur la complétion.",
        "rate_now": "taux actuel",
        "planning_running": "Le cours n'est pas fini : la complétion va monter jusqu'à la fin, "
                            "et avec elle la plus petite différence visible (elle est la plus "
                            "grande pour un taux de 50 %).",
        "mde": "plus petite différence visible",
        "needed_n": "+2 pts : apprenants nécessaires (témoin {share})",
        "needed_share": "+2 pts : part de témoin nécessaire ({n} apprenants)",
        "unreachable": "insuffisant même à 50 %",
        "pooled_title": "Toutes les cohortes ensemble",
        "pooled_intro": "Estimation à effet fixe (inverse de la variance) sur les cohortes et "
                        "cours de la campagne : chaque nouvelle cohorte s'ajoute à la preuve.",
        "strata": "cohortes",
        "pooled": "différence combinée",
        "left_out_strata": "{n} écartée(s) (aucun résultat encore d'un côté ni de l'autre)",
        "survival_note": "Estimation de Kaplan–Meier : la courbe s'arrête à la semaine {week} du "
                         "cours, la dernière finie 21 jours avant le {as_of} ; un apprenant vu "
                         "depuis peut encore revenir, il est censuré là plutôt que compté "
                         "comme restant.",
        "per_message_title": "Effet de chaque message",
        "per_message_intro": "Retour (une activité dans les 7 jours après le moment où le "
                             "message pouvait partir) des apprenants à qui chaque message a été "
                             "proposé, comparé aux apprenants du groupe témoin dans la même "
                             "étape, à la première proposition.",
        "holm_note": "{m} comparaisons sont lues ensemble : leurs verdicts utilisent la "
                     "correction de Holm (p ajustée sous 0,05), pour qu'un « mieux » dû au "
                     "hasard parmi beaucoup ne passe pas pour un effet.",
        "adjusted_p": "p de Holm",
        "left_out_title": "Écartés",
        "circular_dropout": "{message} : abandon, car tous les apprenants à qui il a été proposé "
                            "avaient déjà abandonné (silencieux 21 jours ou plus) à ce moment ; "
                            "la comparaison mesurerait l'étape qui le déclenche, pas le message.",
        "circular_completion": "{message} : complétion et abandon, car tous les apprenants à qui "
                               "il a été proposé avaient déjà terminé à ce moment.",
        "outcomes_per_message": "Complétion et abandon des apprenants à qui chaque message a "
                                "été proposé",
        "sent_title": "Ce qui a été envoyé",
        "message": "message",
        "sent": "envoyés",
        "failed": "échoués",
        "cancelled": "annulés",
        "waiting": "en attente",
        "delivered": "remis",
        "opened": "ouverts",
        "clicked": "cliqués",
        "active_after": "actifs sous 7 jours (sans comparaison)",
        "sent_note": "« Actifs sous 7 jours » décrit qui a été actif après un message, pas ce que "
                     "le message a produit : la comparaison avec le groupe témoin est plus haut.",
        "no_events_note": "Remis, ouverts et cliqués ne sont pas montrés : ce canal ne les "
                          "signale pas (l'outbox).",
        "nothing_sent": "Aucun message dans le registre pour l'instant.",
        "variants_title": "Variantes (tester et apprendre)",
        "variant": "variante",
        "metric": "mesure",
        "rate": "taux",
        "others": "les autres",
        "variant_wins": "{variant} l'emporte en {metric}",
        "no_winner_yet": "pas encore de gagnante.",
        "variant_too_early": "trop tôt pour le dire",
        "variant_no_clear_difference": "pas de différence nette pour l'instant",
        "variant_winner": "devant les autres : une gagnante",
        "variant_behind": "derrière les autres",
        "metric_opened": "ouverture",
        "metric_clicked": "clic",
        "metric_reengaged_7d": "retour sous 7 jours",
        "metric_completion": "complétion",
        "variants_holm_note": "{m} comparaisons de variantes sont lues ensemble : une gagnante "
                              "n'est retenue que si sa p ajustée de Holm est sous 0,05, pour "
                              "qu'une avance due au hasard parmi beaucoup ne passe pas pour une "
                              "victoire.",
        "charts_title": "Graphiques",
        "chart_weekly": "Apprenants actifs par semaine et par étape",
        "chart_survival": "Abandon au fil du cours (Kaplan–Meier)",
        "chart_funnel": "Entonnoir",
        "chart_messages": "Messages et leurs suites",
        "chart_backtest": "Rejeu : étapes et messages chaque lundi",
        "chart_forest": "Effet de chaque campagne, cohorte par cohorte",
        "active_in_week": "apprenants actifs dans la semaine",
        "course_week": "semaine du cours",
        "dropped_out_pct": "ont abandonné (%)",
        "learners": "apprenants",
        "messages": "messages",
        "all learners": "tous les apprenants",
        "treated_group": "suivis",
        "control_group": "témoin",
        "all_group": "tous",
        "funnel_enrolled": "inscrits",
        "funnel_started": "ont commencé",
        "funnel_not_dropped_out": "n'ont pas abandonné",
        "funnel_completed": "ont terminé",
        "funnel_certified": "certifiés",
        "no_run": "Pas encore de campagne exécutée",
        "no_learners": "Aucun apprenant évalué",
        "no_message": "Aucun message envoyé",
        "png": "PNG",
        "backtests_title": "Rejeux sur le passé",
        "backtest": "rejeu",
        "bt_reached": "abandons prévenus ≥ {days} jours avant",
        "bt_flagged": "reçus signalés",
        "bt_early": "départs précoces prévenus",
        "bt_rate": "messages / apprenant / semaine",
        "bt_note": "Prévenus : apprenants finalement désinscrits (au jour {early} du cours ou "
                   "plus tard) qui ont reçu un message d'alerte ({messages}) au moins {days} "
                   "jours avant leur désinscription. Reçus signalés : apprenants ayant terminé "
                   "qui en ont reçu un. Le détail est dans backtest_learners et "
                   "backtest_messages.",
        "bt_auc": "AUC du score de risque par semaine de cours ({backtest}, modèle {model}) :",
        "week_auc": "semaine {week} : {auc}",
        "programme_intro": "Chaque campagne de l'entrepôt, cohorte par cohorte : apprenants, "
                           "complétion, abandon et la différence faite par la campagne, "
                           "combinée sur les cohortes.",
        "footer": "Produit par relance report. Autonome : ni script, ni réseau.",
        "course": "cours",
        "helpful_title": "Ce message vous a-t-il aidé ?",
        "helpful_answers": "réponses",
        "helpful_yes": "oui",
        "helpful_no": "non",
        "helpful_share": "part de oui",
        "helpful_comments": "commentaires",
        "helpful_withheld": "{n} non montrés : moins de {min} réponses",
        "helpful_note": "Réponses des apprenants à « ce message vous a-t-il aidé ? » (une par "
                        "message : la dernière). Les commentaires ne sont montrés que pour un "
                        "message qui a au moins {min} réponses, pour qu'aucun ne désigne les "
                        "quelques personnes qui l'ont écrit (RELANCE_HELPFUL_MIN_ANSWERS).",
        "contacted_title": "Contactés par l'équipe, ou non (observationnel)",
        "contacted_group": "apprenants de la liste de suivi",
        "contacted_learners": "apprenants",
        "contacted_completed": "ont terminé",
        "contacted_withdrew": "se sont retirés",
        "contacted_silent": "silencieux",
        "contacted_active": "actifs dans les 14 jours",
        "contacted_yes": "contactés",
        "contacted_no": "non contactés",
        "contacted_note": "Observationnel, non randomisé : l'équipe choisit qui elle appelle, ces "
                          "groupes différaient donc avant tout appel, et l'écart ne mesure pas "
                          "l'effet d'un appel. Contacté : joint par une personne de l'équipe "
                          "(relance desk ; « pas de réponse » ne compte pas) après son "
                          "inscription sur la liste.",
    },
}
