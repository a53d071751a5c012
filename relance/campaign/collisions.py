"""Campaigns that can write to the same learner in the same week, found from their files.

The weekly cap across campaigns (`limits.per_learner_per_week`) is counted from the ledger
when a campaign runs, so two campaigns on one course both write to a learner whenever the
cap leaves room — and with the default of 2, it always does. This check finds such pairs
before any run: their audiences can share learners (same course and cohort, or unnamed;
`where` conditions cannot be compared and are taken to overlap), no `audience.exclude`
keeps them apart, and each has a message that can go to a learner in a state the other
also messages. States are what stages decide at one moment: whether the learner started
and whether they completed, derived from the stages' own conditions, the stages tried
before them (first match wins) and the completed-learner policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, product

from relance.campaign.loaded import LoadedCampaign
from relance.campaign.conditions import Comparison
from relance.campaign.model import Campaign, Stage

# (started, completed): what a learner can be, as far as telling campaigns apart goes
STATES = frozenset(product((False, True), repeat=2))


@dataclass
class Collision:
    """Two campaigns that can write to the same learner in the same week."""

    first: LoadedCampaign
    second: LoadedCampaign
    shared: str                    # what their audiences share, in words
    messages: dict[str, list[str]]  # per campaign id, its messages that can collide

    @property
    def cap(self) -> int:
        """The weekly cap of the stricter of the two."""
        return min(self.first.campaign.limits.per_learner_per_week,
                   self.second.campaign.limits.per_learner_per_week)


def _states(stage: Stage) -> frozenset:
    """The states a learner in `stage` can be in, by its own conditions."""
    parsed = stage.parsed()
    started, completed = parsed.get("started"), parsed.get("completed")
    progress = parsed.get("progress")
    if isinstance(progress, Comparison) and progress.op in (">", ">=", "=") and progress.value > 0:
        # progress comes from recorded activity
        started = True if started is None else started
    if stage.requires_completion and completed is None:
        completed = True
    return frozenset((s, c) for s, c in STATES if started in (None, s) and completed in (None, c))


def stage_states(campaign: Campaign) -> dict[str, frozenset]:
    """Per stage, the states of the learners it gets: its own conditions, less the learners
    an earlier stage that only tests `started` or `completed` already took."""
    out, taken = {}, set()
    for name, stage in campaign.stages.items():
        own = _states(stage)
        out[name] = own - taken
        if set(stage.parsed()) <= {"started", "completed"} and not stage.any_of:
            taken |= own
    return out


def message_states(campaign: Campaign) -> dict[str, frozenset]:
    """Per message, the states of the learners it can go to."""
    stages = stage_states(campaign)
    out = {}
    for key, msg in campaign.messages.items():
        if msg.on_milestone or msg.on_activity:
            # a threshold crossed or an activity done is recorded activity
            states = frozenset(s for s in STATES if s[0])
        else:
            names = ([msg.on_enter] if msg.on_enter else msg.while_in or msg.to
                     or list(campaign.stages))
            states = frozenset().union(*(stages.get(n, frozenset()) for n in names))
        if not campaign.allows_completed(key):
            states = frozenset(s for s in states if not s[1])
        out[key] = states
    return out


def shared_audience(a: LoadedCampaign, b: LoadedCampaign) -> str | None:
    """What the two audiences can share, in words; None when they cannot share anyone."""
    if b.id in (a.campaign.audience.exclude or []) or a.id in (b.campaign.audience.exclude or []):
        return None
    words = []
    for field, label in (("course", "course"), ("cohort", "cohort")):
        mine, theirs = getattr(a.campaign.audience, field), getattr(b.campaign.audience, field)
        if mine is not None and theirs is not None:
            common = [v for v in mine if v in theirs]
            if not common:
                return None
            words.append(f"{label} {', '.join(common)}")
        elif mine is not None or theirs is not None:
            words.append(f"{label} {', '.join(mine or theirs)}")
    return " and ".join(words) or "every course"


def find(all_campaigns: list[LoadedCampaign],
         checked: list[LoadedCampaign] | None = None) -> list[Collision]:
    """The pairs of `all_campaigns` that can collide and involve one of `checked` (default:
    all). A pair whose campaigns both cap at one message a week cannot: the second to run
    finds the first's message in the ledger."""
    checked_ids = {c.id for c in (checked if checked is not None else all_campaigns)}
    found = []
    for a, b in combinations(sorted(all_campaigns, key=lambda c: c.id), 2):
        if a.id not in checked_ids and b.id not in checked_ids:
            continue
        if a.campaign.limits.per_learner_per_week == 1 == b.campaign.limits.per_learner_per_week:
            continue
        shared = shared_audience(a, b)
        if shared is None:
            continue
        mine, theirs = message_states(a.campaign), message_states(b.campaign)
        both = frozenset().union(*mine.values()) & frozenset().union(*theirs.values())
        if not both:
            continue
        found.append(Collision(a, b, shared, {
            a.id: [k for k, s in mine.items() if s & both],
            b.id: [k for k, s in theirs.items() if s & both]}))
    return found


def advice(collision: Collision, checked_ids: set[str] | None = None) -> tuple[LoadedCampaign, str]:
    """Where to point (a checked campaign's `audience` line) and what to say: both campaigns,
    their messages that can meet, and the three ways out."""
    a, b = collision.first, collision.second
    if checked_ids is not None and a.id not in checked_ids:
        a, b = b, a
    where = " (their `where` conditions are not compared)" if (
        a.campaign.audience.where or b.campaign.audience.where) else ""
    text = (f"audience: {a.id} ({', '.join(collision.messages[a.id])}) and {b.id} "
            f"({', '.join(collision.messages[b.id])}) can both write to the same learner in "
            f"the same week ({collision.shared}{where}), and the weekly cap "
            f"({collision.cap} per learner) lets both through. Resolve it with one of: a cap, "
            f"`per_learner_per_week: 1` under `limits:` in both files or in _defaults.yaml "
            f"(the first to run in the week goes, the other waits); a priority, "
            f"`exclude: [{b.id}]` under `audience:` here ({b.id} keeps its learners) or the "
            f"reverse in {b.id}; or audiences apart (another course or cohort, or a `where`)")
    return a, text
