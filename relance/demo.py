"""The demo cohort: a deterministic, seeded generator of a realistic LMS export.

About 2,000 learners on two courses (a five-month corporate English path, self-paced with
recommended weekly due dates, and a twelve-week MOOC that opens week by week), French and
English names with accents, several timezones, rolling enrolments, a dropout curve that
is steep early and flattens later, irregular weeks, forum posts, and a few broken rows as
real exports have. It is written as CSV files with a mapping file and loaded through the
CSV connector, so the demo takes the same path as real data.

Same seed and same `as_of` give byte-identical files.
"""

from __future__ import annotations

import csv
import math
import os
import random
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

PARIS = ZoneInfo("Europe/Paris")

FR_FIRST = ["Zoé", "Chloé", "Léa", "Hélène", "Gaëlle", "Anaïs", "Inès", "Agnès", "Cécile",
            "Renée", "Josée", "Maëlle", "Élodie", "Noémie", "Aurélie", "Béatrice", "Mélanie",
            "Clémence", "Jérôme", "François", "Benoît", "Éric", "Loïc", "Noël", "Maël",
            "Clément", "Rémi", "Stéphane", "Frédéric", "Jérémie", "Théo", "Raphaël", "Gaël",
            "Hervé", "Sébastien", "Aurélien", "Céline", "Émilie", "Océane", "Thaïs", "Ophélie",
            "Joël", "Grégoire", "André", "Valérie", "Sandrine", "Karim", "Yasmine", "Mathéo"]
FR_LAST = ["Lefèvre", "Dupré", "Bézier", "Gagné", "Côté", "Lévesque", "Pâquet", "Mercier",
           "Garnier", "Rousseau", "Lemaître", "Bérubé", "Gérard", "Bénard", "Chevalier",
           "Laflèche", "Ménard", "Péron", "Thériault", "Fréchette", "Gauthier", "Hébert",
           "Müller", "Dubois", "Moreau", "Leclerc", "Renaud", "Fournier", "Lacroix", "Joly",
           "Benali", "Traoré", "Nguyễn", "Da Silva", "Brisebois", "Désilets", "Aubé"]
EN_FIRST = ["Olivia", "James", "Amelia", "Noah", "Siobhán", "Zoë", "Seán", "Chloë", "Liam",
            "Emma", "Oliver", "Ava", "Isla", "Jack", "Niamh", "Eóin", "Grace", "Harry",
            "Sophie", "Ethan", "Aoife", "Mia", "Lucas", "Renée", "Daniel", "Priya", "Arjun"]
EN_LAST = ["Smith", "O'Brien", "Jones", "Taylor", "Brontë", "García", "Nguyen", "Williams",
           "Murphy", "Kelly", "Walsh", "Patel", "Singh", "Brown", "Wilson", "Evans",
           "MacDonald", "Ó Súilleabháin", "Clarke", "Hughes", "Zoë-Ann", "Byrne"]

COMPANIES = ["atelier-lumiere.example", "groupe-mercure.example", "banque-horizon.example"]
# The corporate path's managers: per company, two for French-speaking teams and one for an
# English-speaking team. Picked from the learner's number, not the random stream, so adding
# them changed nothing else of the demo.
MANAGERS = {company: (f"claire.morel@{company}", f"paul.girard@{company}",
                      f"sarah.collins@{company}") for company in COMPANIES}


def _manager(spec: "CourseSpec", n: int, domain: str, french: bool) -> str:
    """The learner's manager (corporate path only); one learner in ten has none on record."""
    if not spec.self_paced or n % 10 == 0:
        return ""
    team = MANAGERS[domain]
    return team[n % 2] if french else team[2]


@dataclass(frozen=True)
class CourseSpec:
    course_id: str
    title: str
    weeks: int
    started_weeks_ago: int
    learners: int
    cohort: str
    self_paced: bool
    fr_share: float
    timezones: tuple[tuple[str, float], ...]
    never_start: float
    weekly_hazard: float
    early_hazard: float


COURSES = [
    CourseSpec("anglais-b2", "Anglais professionnel B2", 20, 11, 1200, "2026-09", True, 0.85,
               (("Europe/Paris", 0.74), ("America/Montreal", 0.08), ("Europe/Brussels", 0.06),
                ("Europe/London", 0.05), ("Africa/Casablanca", 0.04), ("Indian/Reunion", 0.03)),
               never_start=0.08, weekly_hazard=0.025, early_hazard=0.05),
    CourseSpec("mooc-climat", "Climat et transition — MOOC", 12, 7, 800, "2026-10", False, 0.55,
               (("Europe/Paris", 0.45), ("America/Montreal", 0.12), ("America/New_York", 0.08),
                ("Europe/London", 0.1), ("Africa/Abidjan", 0.1), ("Asia/Tokyo", 0.05),
                ("Europe/Brussels", 0.1)),
               never_start=0.18, weekly_hazard=0.06, early_hazard=0.12),
]


def default_as_of(now: datetime | None = None) -> datetime:
    """Monday 09:00 Paris time of the current week: the demo's 'now'."""
    from relance import clock
    now = clock.or_now(now).astimezone(PARIS)
    monday = (now - timedelta(days=now.weekday())).replace(hour=9, minute=0, second=0,
                                                          microsecond=0)
    if monday > now:
        monday -= timedelta(days=7)
    return monday.astimezone(timezone.utc)


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if c.isascii() and (c.isalnum() or c in "-")).lower()


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(out_dir: str | Path, *, as_of: datetime | None = None, seed: int = 2026,
             scale: float = 1.0, starts: datetime | None = None) -> Path:
    """Write the demo export (CSV files and mapping.yaml) into `out_dir`; return the mapping.

    Courses start some weeks before `as_of` (`started_weeks_ago`), so the export is a
    course under way; with `starts`, every course starts on the Monday of that week
    instead, and an `as_of` after their end gives a whole season (`relance simulate`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    as_of = (as_of or default_as_of()).astimezone(timezone.utc)
    export_at = as_of - timedelta(hours=1)
    rng = random.Random(seed)

    learners, courses, enrolments, activities, events, posts = [], [], [], [], [], []
    used_emails: set[str] = set()
    n = 0
    for spec in COURSES:
        start_local = (starts.astimezone(PARIS) if starts else
                       as_of.astimezone(PARIS) - timedelta(weeks=spec.started_weeks_ago))
        start_local = (start_local - timedelta(days=start_local.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0)
        start = start_local.astimezone(timezone.utc)
        end = start_local + timedelta(weeks=spec.weeks) - timedelta(days=1)
        # nothing happens on a course after its end (an `as_of` past it: a whole season)
        closes = min(export_at, (start_local + timedelta(weeks=spec.weeks)).astimezone(timezone.utc))
        courses.append({
            "Code": spec.course_id, "Intitulé": spec.title,
            "URL": f"https://lms.example.org/course/{spec.course_id}",
            "Forum": f"https://lms.example.org/forum/{spec.course_id}",
            "Début": start_local.strftime("%d/%m/%Y"), "Fin": end.strftime("%d/%m/%Y")})

        # Two activities a week: a lesson and a graded quiz (or, every fourth week, an
        # assignment), due on Sunday night, Paris time.
        course_acts = []
        for week in range(1, spec.weeks + 1):
            due = start_local + timedelta(weeks=week) - timedelta(minutes=1)
            opens = None if spec.self_paced else start_local + timedelta(weeks=week - 1)
            unit = f"Unité {week}" if spec.fr_share > 0.7 else f"Semaine {week}"
            for kind, weight, label in (("lesson", 1, "leçon"),
                                        ("assignment" if week % 4 == 0 else "quiz",
                                         3 if week % 4 == 0 else 2,
                                         "devoir" if week % 4 == 0 else "quiz")):
                act = {"course_id": spec.course_id, "activity_id": f"w{week:02d}-{kind}",
                       "title": f"{unit} — {label}", "kind": kind, "week": week,
                       "opens_at": _iso(opens) if opens else "", "due_at": _iso(due),
                       "weight": weight, "is_required": "oui",
                       "url": f"https://lms.example.org/course/{spec.course_id}/w{week:02d}/{kind}"}
                activities.append(act)
                course_acts.append((act, opens.astimezone(timezone.utc) if opens else start))

        for _ in range(max(1, int(spec.learners * scale))):
            n += 1
            learner_id = f"L{n:05d}"
            french = rng.random() < spec.fr_share
            first = rng.choice(FR_FIRST if french else EN_FIRST)
            last = rng.choice(FR_LAST if french else EN_LAST)
            domain = rng.choice(COMPANIES) if spec.self_paced else rng.choice(
                ["mail.example", "courriel.example", "post.example"])
            base = f"{_ascii(first)}.{_ascii(last)}"
            email, k = f"{base}@{domain}", 1
            while email in used_emails:
                k += 1
                email = f"{base}{k}@{domain}"
            used_emails.add(email)
            tz_name = _pick(rng, spec.timezones)
            if tz_name == "America/Montreal" and not french and rng.random() < 0.5:
                french = True
            locale = ("fr-CA" if tz_name == "America/Montreal" else "fr") if french else (
                "en-GB" if tz_name == "Europe/London" else "en")
            learners.append({"Identifiant": learner_id, "Courriel": email, "Prénom": first,
                             "Nom": last, "Langue": locale, "Fuseau horaire": tz_name,
                             "Manager": _manager(spec, n, domain, french)})
            tz = ZoneInfo(tz_name)

            # enrolment: most before the start, the rest rolling in (some very recently)
            if rng.random() < (0.85 if spec.self_paced else 0.6):
                enrolled = start - timedelta(days=rng.uniform(1, 14))
            else:
                enrolled = start + timedelta(days=rng.uniform(0, (min(as_of, closes) - start).days - 0.5))
            enrolled = min(enrolled, export_at - timedelta(hours=2))
            status, completed_at = "En cours", ""

            never = rng.random() < spec.never_start
            # weeks until dropping out: a steep start, then a steady hazard
            dropout_after = math.inf
            week_i = 0
            while week_i < spec.weeks + 4:
                hazard = spec.early_hazard if week_i < 3 else spec.weekly_hazard
                if rng.random() < hazard:
                    dropout_after = week_i
                    break
                week_i += 1
            # a few sprinters finish a self-paced path early; most keep a steady pace
            pace = rng.uniform(2.0, 2.4) if spec.self_paced and rng.random() < 0.05 \
                else rng.uniform(0.8, 1.6)
            skip_week = rng.uniform(0.03, 0.15)
            begin = max(enrolled, start) + timedelta(days=rng.expovariate(1 / 3))
            done = 0
            credit = 0.0
            day = begin
            if not never:
                while day < closes:
                    week_of_course = int((day - start).days // 7)
                    if week_of_course >= dropout_after:
                        break
                    if rng.random() < skip_week:
                        day += timedelta(days=7)
                        continue
                    sessions = rng.choice([1, 2, 2, 3, 3, 4])
                    credit += 2 * pace
                    for s in range(sessions):
                        local_day = (day + timedelta(days=rng.uniform(0, 6.5))).astimezone(tz)
                        moment = local_day.replace(hour=rng.choice([7, 8, 12, 13, 18, 19, 20, 21]),
                                                   minute=rng.randrange(60))
                        moment = moment.astimezone(timezone.utc)
                        if moment >= closes:
                            continue
                        events.append({"learner": learner_id, "course": spec.course_id,
                                       "activity": "", "verb": "accessed", "at": _iso(moment),
                                       "progress": ""})
                        todo = int(credit) if s == sessions - 1 else min(int(credit), 1)
                        for _ in range(todo):
                            if done >= len(course_acts):
                                break
                            act, opens = course_acts[done]
                            if opens > moment:
                                break
                            at = moment + timedelta(minutes=rng.randint(5, 50))
                            if at >= closes:
                                break
                            events.append({"learner": learner_id, "course": spec.course_id,
                                           "activity": act["activity_id"],
                                           "verb": "submitted" if act["kind"] == "assignment" else "completed",
                                           "at": _iso(at), "progress": ""})
                            done += 1
                            credit -= 1
                        if rng.random() < 0.07:
                            replies = int(rng.expovariate(1 / 2.5))
                            posts.append({"id": f"P{len(posts) + 1:05d}", "learner": learner_id,
                                          "course": spec.course_id,
                                          "title": rng.choice(_POST_TITLES[spec.course_id, french]),
                                          "posted": _iso(moment + timedelta(minutes=55)),
                                          "replies": replies,
                                          "notable": "oui" if replies >= 6 or rng.random() < 0.04 else "non"})
                    day += timedelta(days=7)
                if done >= len(course_acts):
                    status = "Terminé"
                    completed_at = events[-1]["at"]
            enrolments.append({"learner": learner_id, "course": spec.course_id,
                               "cohort": spec.cohort, "enrolled": _iso(enrolled),
                               "status": status, "completed": completed_at})

    # Real exports are never clean: a few rows the loader must set aside, with reasons.
    learners.append({"Identifiant": "L99001", "Courriel": "jean.dupont@@atelier-lumiere",
                     "Prénom": "Jean", "Nom": "Dupont", "Langue": "fr", "Fuseau horaire": "Europe/Paris"})
    learners.append({"Identifiant": "", "Courriel": "sans.identifiant@mail.example",
                     "Prénom": "Sans", "Nom": "Identifiant", "Langue": "fr", "Fuseau horaire": ""})
    events.append({"learner": "L99999", "course": "anglais-b2", "activity": "", "verb": "accessed",
                   "at": _iso(export_at - timedelta(days=1)), "progress": ""})
    events.append({"learner": "L00001", "course": "anglais-b2", "activity": "", "verb": "accessed",
                   "at": "31/02/2026 10:00", "progress": ""})
    enrolments.append({"learner": "L00002", "course": "cours-inconnu", "cohort": "2026-09",
                       "enrolled": _iso(export_at - timedelta(days=20)), "status": "En cours",
                       "completed": ""})

    _write(out / "apprenants.csv", learners)
    _write(out / "cours.csv", courses)
    _write(out / "inscriptions.csv", enrolments)
    _write(out / "activites.csv", activities)
    _write(out / "traces.csv", events)
    _write(out / "forum.csv", posts)
    mapping = {
        "name": "demo",
        "directory": ".",
        "delimiter": ",",
        "encoding": "utf-8",
        "timezone": "Europe/Paris",
        "entities": {
            "learners": {"file": "apprenants.csv", "columns": {
                "learner_id": "Identifiant", "email": "Courriel", "first_name": "Prénom",
                "last_name": "Nom", "locale": "Langue", "timezone": "Fuseau horaire",
                "manager_email": "Manager"}},
            "courses": {"file": "cours.csv", "columns": {
                "course_id": "Code", "title": "Intitulé", "url": "URL", "forum_url": "Forum",
                "starts_on": "Début", "ends_on": "Fin"}},
            "enrolments": {"file": "inscriptions.csv", "columns": {
                "learner_id": "learner", "course_id": "course", "cohort": "cohort",
                "enrolled_at": "enrolled", "status": "status", "completed_at": "completed"}},
            "activities": {"file": "activites.csv", "columns": {
                c: c for c in ("course_id", "activity_id", "title", "kind", "week", "opens_at",
                               "due_at", "weight", "is_required", "url")}},
            "progress_events": {"file": "traces.csv", "columns": {
                "learner_id": "learner", "course_id": "course", "activity_id": "activity",
                "verb": "verb", "occurred_at": "at", "progress": "progress"}},
            "contributions": {"file": "forum.csv", "columns": {
                "contribution_id": "id", "learner_id": "learner", "course_id": "course",
                "title": "title", "posted_at": "posted", "n_replies": "replies",
                "is_notable": "notable"}},
        },
    }
    mapping_path = out / "mapping.yaml"
    mapping_path.write_text("# Generated by `relance demo`: how the demo export maps to the "
                            "warehouse.\n" + yaml.safe_dump(mapping, allow_unicode=True,
                                                           sort_keys=False), encoding="utf-8")
    return mapping_path


SOURCES_MARK = "# Written by `relance demo`"


def write_sources(path: str | Path, mapping: str | Path) -> str | None:
    """Make the sources file at `path` name the demo's export (source `demo`, as the
    mapping names it), so that `relance sync` and the deployed sync-progress, which read
    that file, load the demo as they would real data. A file `relance demo` did not write
    is the operator's and is left as it is. Returns what was done, in words, or None."""
    path = Path(path)
    if path.exists() and not path.read_text(encoding="utf-8").startswith(SOURCES_MARK):
        return None
    relative = Path(os.path.relpath(Path(mapping).absolute(), path.absolute().parent))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{SOURCES_MARK}: its export, for `relance sync` and the deployed\n"
                    "# sync-progress. Replace it with your own sources (see\n"
                    "# connectors/sources.example.yaml); the demo then leaves it alone.\n"
                    + yaml.safe_dump({"sources": {"demo": {"kind": "csv",
                                                           "mapping": relative.as_posix()}}},
                                     sort_keys=False), encoding="utf-8")
    return f"{path} names the demo's export (source demo, {relative.as_posix()})"


_POST_TITLES = {
    ("anglais-b2", True): [
        "Mes astuces pour l'oral", "Question sur le present perfect", "Ressource : podcasts BBC",
        "Qui veut pratiquer en visio ?", "Retour sur le quiz de la semaine",
        "Vocabulaire des réunions", "Comment gérer les faux-amis ?", "Partage : fiche de synthèse",
        "Les phrasal verbs qui reviennent au bureau", "Écrire un e-mail formel : mes modèles"],
    ("anglais-b2", False): [
        "Speaking practice partners?", "Present perfect or past simple?",
        "Useful BBC podcasts", "My notes on meeting vocabulary", "Quiz feedback thread"],
    ("mooc-climat", True): [
        "Lecture conseillée : le dernier rapport du GIEC", "Question sur le budget carbone",
        "Adaptation ou atténuation : mes notes", "Groupe d'étude le jeudi ?",
        "Retour sur le quiz du module", "Carte des initiatives locales", "Podcast sur la sobriété"],
    ("mooc-climat", False): [
        "Study group on Thursdays?", "Great article on carbon pricing", "Question about week 3",
        "My notes on adaptation vs mitigation", "Sharing a podcast", "Quiz 4 feedback",
        "Map of local climate initiatives"],
}


def _write(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.write_text("", encoding="utf-8")
        return
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
