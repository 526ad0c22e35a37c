"""The marketer's words: each feature's value as a phrase, the contact rules' reasons for masked
actions, and the one-sentence explanation (numbers formatted by agents.explain.formatting).

No SHAP here: these functions take numbers already attributed (agents.explain.attribution) and
values already read back from the customer (agents.features).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.explain.formatting import _days_ago, _fmt, _pct, _signed, _whole
from agents.explain.result import Explanation, MaskedGroup
from agents.features import DEMO_LAYOUT, FeatureLayout, unscaled_values

SCORE_KINDS: dict[str, str] = {
    "actor_critic": "logit",
    "dqn": "Q-value (expected long-term reward)",
    "q_learning": "Q-value (expected long-term reward)",
    "supervised": "predicted immediate reward",
    "linucb": "predicted immediate reward",
    "thompson": "predicted immediate reward",
    "epsilon_greedy": "predicted immediate reward",
    "softmax": "predicted immediate reward",
    "rule_based": "rule score",
    "random": "score",
}
"""What each agent's `scores` mean, for the reader of an explanation."""


def _channel_words(catalogue: Any = None) -> dict[str, str]:
    """Channel key -> how a phrase names it (the catalogue's channels; default the demo's)."""
    layout = FeatureLayout.for_catalogue(catalogue) if catalogue is not None else DEMO_LAYOUT
    return dict(zip(layout.channels, layout.channel_words))



# ============================================================================ feature values
def feature_phrases_of_vector(vector: Sequence[float], layout: Any) -> dict[str, str]:
    """Feature name -> the customer's value in marketer words, from a stored state vector alone
    (a logged decision's snapshot): `agents.features.unscaled_values` then `feature_phrase`,
    named by `layout` (an `agents.features.FeatureLayout`)."""
    obs = np.asarray(vector, dtype=np.float64)[None, :]
    names = list(layout.names)[:obs.shape[1]]
    values = unscaled_values(obs, names)
    words = dict(zip(layout.channels, layout.channel_words))
    return {name: feature_phrase(name, float(values[name][0]), None, layout.labels, words)
            for name in names}


def feature_phrase(name: str, value: float, extras: dict[str, float] | None = None,
                   labels: dict[str, str] | None = None,
                   channel_words: dict[str, str] | None = None) -> str:
    """The customer's value of feature `name` in marketer words (`channel_words`: how each
    channel key is named, default the demo catalogue's)."""
    extras = extras or {}
    words = channel_words if channel_words is not None else _channel_words()
    for channel, word in words.items():
        prefix = f"{channel}_"
        if not name.startswith(prefix):
            continue
        kind = name[len(prefix):]
        sent = extras.get(f"{channel}_sent")
        if kind in ("open_rate", "click_rate"):
            verb, noun = ("opened", "opens") if kind == "open_rate" else ("clicked", "clicks")
            what = "open" if kind == "open_rate" else "click"
            if sent is not None:
                done = extras[f"{channel}_{noun}"]
                if sent < 0.05:
                    return f"no recent {word} messages to {what}"
                if _whole(done) and _whole(sent) and sent >= 1:
                    return f"{verb} {_fmt(done)} of the last {_fmt(sent)} {word} messages"
                # decayed counts are not whole numbers: quote the rate, counts as context
                return (f"{word} {what} rate {_pct(value)} ({_fmt(done)} {noun} per "
                        f"{_fmt(sent)} recent messages)")
            return f"{word} {what} rate {_pct(value)}"
        if kind == "contacts":
            if value < 0.05:
                return f"no {word} contacts in the last ~30 days"
            return f"{_fmt(value)} {word} contacts in the last ~30 days"
        if kind == "days_since_contact":
            return _days_ago(value, f"last {word} contact", f"never contacted by {word}")
        if kind == "consent":
            return f"{word} consent given" if value >= 0.5 else f"no {word} consent"
    if name == "days_since_purchase":
        return _days_ago(value, "last purchase", "never purchased")
    if name == "purchase_frequency":
        return f"{_fmt(value)} purchases in the last ~90 days"
    if name == "monetary_value":
        return f"revenue {_fmt(value)} in the last ~90 days"
    if name == "average_order_value":
        return f"average order value {_fmt(value)}"
    if name == "discount_purchase_share":
        return f"{_pct(value)} of purchases made with a discount"
    if name == "discount_contact_share":
        return f"{_pct(value)} of recent contacts carried a discount"
    if name == "days_since_engagement":
        return _days_ago(value, "last open, click or purchase", "never opened, clicked or bought")
    if name == "contacts_7d":
        return "no contact in the last 7 days" if value < 0.5 else \
            f"{_fmt(value)} contacts in the last 7 days"
    if name == "contacts_30d":
        return "no contact in the last 30 days" if value < 0.5 else \
            f"{_fmt(value)} contacts in the last 30 days"
    if name == "contact_pressure":
        return f"contact pressure {_fmt(value)} (fatigue)"
    if name == "tenure_days":
        return f"customer for {_fmt(value)} days"
    if name == "utc_offset":
        return f"time zone UTC{value:+.0f}"
    label = (labels or {}).get(name, name.replace("_", " "))
    return f"{label} {_fmt(value)}"


# ============================================================================ masked actions
def _reason_texts(flags: int, action: Any, contact_rules: Any,
                  contact_gap_hours: float | None = None, catalogue: Any = None) -> list[str]:
    """Human words for one action's MaskReason flags (agents.constraints.describe_reasons)."""
    from agents.constraints import describe_reasons

    if action is not None and not hasattr(action, "channel"):
        action = None
    return [str(t) for t in describe_reasons(int(flags), action, contact_rules, contact_gap_hours,
                                             catalogue)]


def _masked_groups(mask_row: np.ndarray, flags_row: np.ndarray | None, labels: Sequence[str],
                   actions_meta: Sequence[Any], contact_rules: Any,
                   memo: dict[tuple, list[tuple[str | None, str]]] | None = None,
                   gap_row: np.ndarray | None = None, catalogue: Any = None) -> list[MaskedGroup]:
    """Masked actions grouped by rule: per channel where the rule names it, else across channels.

    `gap_row` (W,): hours from each send window's send time to the nearest other contact, for
    the minimum gap's words. `memo` keeps each (action, flags, gap) triple's groups: the words
    depend only on them, the actions and the rules, which an Explainer holds fixed (a live
    decision masks dozens of actions).
    """
    from agents.catalogue import Catalogue
    from agents.constraints import MaskReason

    catalogue = catalogue if catalogue is not None else Catalogue.from_actions(())
    window_keys = catalogue.window_keys
    channel_labels = {c.key: c.label for c in catalogue.channels}

    groups: dict[tuple[str | None, str], list[int]] = {}
    for a in np.flatnonzero(~mask_row):
        flag = int(flags_row[a]) if flags_row is not None else 0
        meta = actions_meta[a]
        gap = None
        if gap_row is not None and flag & MaskReason.MIN_GAP \
                and getattr(meta, "send_window", None) in window_keys:
            gap = round(float(gap_row[window_keys.index(meta.send_window)]))
        keys = memo.get((int(a), flag, gap)) if memo is not None else None
        if keys is None:
            texts = _reason_texts(flag, meta, contact_rules, gap, catalogue) if flag else \
                ["not allowed by the campaign's mask"]
            channel = getattr(meta, "channel", None)
            channel_label = channel_labels.get(channel, "") if channel else ""
            # a rule about this channel (consent, its cap) groups per channel; others across all
            keys = [(channel if bool(channel_label) and channel_label.lower() in text.lower()
                     else None, text) for text in texts]
            if memo is not None:
                memo[(int(a), flag, gap)] = keys
        for key in keys:
            groups.setdefault(key, []).append(int(a))
    out = []
    for (channel, reason), members in groups.items():
        if channel is not None:
            name = channel_labels[channel]
            rest = " ".join(reason.replace(name, " ").split())  # "no SMS consent" -> "no consent"
            shown = f"{name}: {rest}"
        else:
            shown = reason[:1].upper() + reason[1:]
        plural = "action" if len(members) == 1 else "actions"
        out.append(MaskedGroup(channel, reason, f"{shown} ({len(members)} {plural})", members,
                               [labels[a] for a in members]))
    return out


# ============================================================================ the sentence
def _rule_labels() -> dict[str, str]:
    """The rule-based policy's rules in marketer words, by rule name."""
    from agents.algos.baselines import RULE_LABELS
    return dict(RULE_LABELS)


def _sentence(e: Explanation) -> str:
    """One sentence: the chosen action, its top reasons with signs, and the runner-up's gap."""
    parts = [c.text() for c in e.top_contributions]
    head = f"{e.action_label} chosen"
    rule = e.own_terms.get("rule")
    if rule:
        head += f" by the rule \"{rule}\""
    reasons = ", ".join(parts) if parts else "no feature stood out"
    text = f"{head}: {reasons}"
    if "ucb_bonus" in e.own_terms:
        text += (f"; predicted reward {e.score:.2f} plus exploration bonus "
                 f"{e.own_terms['ucb_bonus']:.2f}")
    if e.runner_up_label is not None and e.score_gap is not None:
        gap = _signed(abs(e.score_gap))[1:]
        if e.score_gap >= 0:
            text += f"; runner-up {e.runner_up_label} scored {gap} lower"
        else:
            text += f"; {e.runner_up_label} scored {gap} higher but was not drawn"
    return text + "."
