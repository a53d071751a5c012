"""The cost model (`campaigns/_costs.yaml`): assumptions that turn the control group's
uplift into euros. Every estimate carries the assumptions it rests on, to be printed
beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relance.campaign.problems import CampaignError, Problem, dotted, line_for, read_yaml

COSTS_FILE = "_costs.yaml"


class CommunityManager(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hours_per_learner: float = Field(0, ge=0)
    hourly_cost: float = Field(0, ge=0)


class Costs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cost_per_seat: float = Field(0, ge=0)
    value_per_completion: float = Field(0, ge=0)
    community_manager: CommunityManager = CommunityManager()
    cost_per_message: float = Field(0, ge=0)


class CostFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: str = "EUR"
    default: Costs = Costs()
    campaigns: dict[str, dict] = {}


@dataclass
class CostModel:
    currency: str
    default: Costs
    overrides: dict[str, Costs]
    source: str

    def for_campaign(self, campaign_id: str) -> Costs:
        return self.overrides.get(campaign_id, self.default)


def load_costs(campaigns_dir: str | Path) -> CostModel:
    """The cost model of a campaigns folder; an absent file means no euro figure (zeros)."""
    path = Path(campaigns_dir) / COSTS_FILE
    if not path.exists():
        return CostModel("EUR", Costs(), {}, f"{path} (absent: no costs assumed)")
    display = str(path)
    data, lines, problems = read_yaml(path, display)
    if problems:
        raise CampaignError(problems)

    def located(exc: ValidationError, prefix: tuple = ()) -> list[Problem]:
        return [Problem(display, line_for(lines, prefix + tuple(e["loc"])),
                        dotted(prefix + tuple(e["loc"])), e["msg"]) for e in exc.errors()]

    parsed = None
    try:
        parsed = CostFile.model_validate(data or {})
    except ValidationError as exc:
        problems += located(exc)
    raw = data if isinstance(data, dict) else {}
    default = raw.get("default") if isinstance(raw.get("default"), dict) else {}
    overrides = {}
    for cid, own in (raw.get("campaigns") or {}).items():
        own = own if isinstance(own, dict) else {}
        merged = default | own
        if isinstance(own.get("community_manager"), dict) and isinstance(
                default.get("community_manager"), dict):
            merged["community_manager"] = default["community_manager"] | own["community_manager"]
        try:
            overrides[cid] = Costs.model_validate(merged)
        except ValidationError as exc:
            # a default's own mistake is reported once, under `default`
            problems += [p for p in located(exc, ("campaigns", cid))
                         if not any(q.field == "default" + p.field.removeprefix(f"campaigns.{cid}")
                                    for q in problems)]
    if problems:
        raise CampaignError(problems)
    return CostModel(parsed.currency, parsed.default, overrides, display)


@dataclass
class Estimate:
    """Euros of one campaign's completion uplift, with its interval and assumptions."""

    currency: str
    treated: int
    extra_completions: float
    extra_completions_low: float
    extra_completions_high: float
    value: float
    value_low: float
    value_high: float
    campaign_cost: float
    net: float
    net_low: float
    net_high: float
    cost_per_completion_treated: float | None
    cost_per_completion_control: float | None
    assumptions: list[str]

    def money(self, amount: float | None) -> str:
        if amount is None:
            return "n/a"
        return f"{amount:,.0f} {self.currency}".replace(",", "\u202f")


def estimate(costs: Costs, currency: str, *, n_treated: int, rate_treated: float,
             rate_control: float, ci_low: float, ci_high: float, messages_sent: int,
             source: str) -> Estimate:
    """Extra completions = (treated rate - control rate) x treated learners, valued at
    `value_per_completion`; the campaign's own cost (community manager's time, messages)
    comes off. Low and high follow the difference's 95% interval."""
    cm = costs.community_manager
    extra = (rate_treated - rate_control) * n_treated
    extra_low, extra_high = ci_low * n_treated, ci_high * n_treated
    cost = n_treated * cm.hours_per_learner * cm.hourly_cost + messages_sent * costs.cost_per_message
    per_seat_t = (costs.cost_per_seat + cm.hours_per_learner * cm.hourly_cost
                  + (messages_sent / n_treated if n_treated else 0) * costs.cost_per_message)
    v = costs.value_per_completion
    assumptions = [
        f"value of a completion: {v:,.0f} {currency}",
        f"cost per seat: {costs.cost_per_seat:,.0f} {currency}",
        f"community manager: {cm.hours_per_learner:g} h per treated learner at "
        f"{cm.hourly_cost:,.0f} {currency}/h",
        f"cost per message: {costs.cost_per_message:g} {currency}",
        f"{n_treated} treated learners, {messages_sent} messages sent",
        "extra completions = (treated completion rate - control completion rate) x treated "
        "learners; low and high from the difference's 95% interval",
        f"source: {source}",
    ]
    return Estimate(
        currency, n_treated, extra, extra_low, extra_high,
        extra * v, extra_low * v, extra_high * v, cost,
        extra * v - cost, extra_low * v - cost, extra_high * v - cost,
        per_seat_t / rate_treated if rate_treated else None,
        costs.cost_per_seat / rate_control if rate_control else None,
        assumptions)
