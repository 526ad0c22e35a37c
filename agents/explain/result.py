"""What an explanation holds: the records the console stores (`Explanation.to_dict`) and reads back."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from agents.common.json_values import json_safe
from agents.explain.formatting import _signed

@dataclass
class Contribution:
    """One feature's signed push on the chosen action's score."""

    feature: str
    """Feature name (agents.features.FEATURE_NAMES)."""
    label: str
    """The feature in marketer words (agents.features.FEATURE_LABELS)."""
    phrase: str
    """The customer's real value in marketer words, e.g. "opened 3 of the last 5 SMS messages"."""
    value: float | None
    """The raw (unnormalised) value where known, else the model's input value."""
    shap_value: float
    """Contribution to the score, in score units (positive pushed towards the chosen action)."""

    def text(self) -> str:
        return f"{self.phrase} ({_signed(self.shap_value)})"


@dataclass
class MaskedGroup:
    """Actions one contact rule blocked, grouped by channel and reason."""

    channel: str | None
    reason: str
    """The rule in human words, e.g. "SMS cap 1 per 7 days reached"."""
    text: str
    """What the console shows, e.g. "SMS: cap 1 per 7 days reached (12 actions)"."""
    actions: list[int]
    action_labels: list[str]


@dataclass
class Explanation:
    """Why the policy chose `action` for one customer; `to_dict()` is what the console stores."""

    action: int
    action_label: str
    score: float
    """The explained output: the chosen action's score."""
    score_kind: str
    """What the score means ("logit", "Q-value ...", "predicted immediate reward")."""
    base_value: float
    """The chosen action's expected score over the background customers."""
    shap_values: dict[str, float]
    """SHAP value per feature, in FEATURE_NAMES order."""
    feature_values: dict[str, float | None]
    """The customer's raw feature values where known (None where never happened), else inputs."""
    top_contributions: list[Contribution]
    runner_up: int | None
    runner_up_label: str | None
    score_gap: float | None
    """Chosen score minus runner-up score (how much the runner-up lost by)."""
    probability: float | None
    """The chosen action's probability under the policy (its propensity)."""
    runner_up_probability: float | None
    probability_gap: float | None
    """Chosen minus runner-up probability; None for a deterministic (greedy) policy."""
    masked: list[MaskedGroup]
    sentence: str
    method: str
    additive: bool
    """True when contributions + base_value == score (up to float round-off)."""
    agent: str
    own_terms: dict[str, Any] = field(default_factory=dict)
    """How bandits / rules explain themselves (UCB bonus, rule fired)."""

    def reasons(self, k: int = 3) -> list[str]:
        """The top `k` reasons in marketer words: the features that pushed hardest.

        Where no feature moved the score (a rule's "no contact" scores the same for everyone), the
        rule that decided and the contact rules that blocked actions are the reasons instead: an
        answer with no reason at all tells a compliance reviewer nothing.
        """
        texts = [c.text() for c in self.top_contributions]
        if not texts:
            rule = self.own_terms.get("rule")
            if rule:
                texts.append(f"decided by the rule: {rule}")
            texts.extend(group.text for group in self.masked)
        return texts[:k]

    @property
    def additivity_error(self) -> float:
        return abs(self.base_value + sum(self.shap_values.values()) - self.score)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (floats, ints, strings, lists, dicts, None)."""
        return json_safe(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        """Rebuild a stored explanation (the inverse of `to_dict`)."""
        data = dict(data)
        data["top_contributions"] = [Contribution(**c) for c in data["top_contributions"]]
        data["masked"] = [MaskedGroup(**g) for g in data["masked"]]
        return cls(**data)
