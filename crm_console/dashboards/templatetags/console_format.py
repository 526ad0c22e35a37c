"""Number formatting shared by every console page (KPIs, intervals, uplifts)."""

from __future__ import annotations

from django import template

register = template.Library()


def _fmt(value: float | None, unit: str, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    sign = "+" if signed else ""
    if unit == "pct":
        return f"{value * 100:{sign},.1f} %" if not signed else f"{value * 100:+,.1f} pp"
    if unit == "money":
        return f"{value:{sign},.2f}" if abs(value) < 1000 else f"{value:{sign},.0f}"
    if unit == "ratio":
        return f"{value:{sign},.2f}×"
    return f"{value:{sign},.3f}"


@register.filter
def kpi(value: float | None, unit: str = "") -> str:
    """A KPI value in its unit: 12.3 %, 1,234.56, 2.10×."""
    return _fmt(value, unit)


@register.filter
def kpi_delta(value: float | None, unit: str = "") -> str:
    """A signed difference: +1.2 pp for rates, +12.00 for money."""
    return _fmt(value, unit, signed=True)


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.{int(digits)}f} %"


@register.filter
def signed(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{float(value):+.{int(digits)}f}"


@register.filter
def direction(estimate) -> str:
    """CSS class for an uplift: "up" / "down" when the 95 % interval excludes 0, else "flat"."""
    if estimate is None or estimate.lower is None:
        return "flat"
    if estimate.lower > 0:
        return "up"
    if estimate.upper < 0:
        return "down"
    return "flat"


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


def _bare(value: float, unit: str, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if unit == "pct":
        return f"{value * 100:{sign}.1f}"
    if unit == "money":
        return f"{value:{sign},.2f}" if abs(value) < 1000 else f"{value:{sign},.0f}"
    return f"{value:{sign},.2f}"


_SUFFIX = {"pct": " %", "ratio": "×", "money": ""}


@register.filter
def kpi_range(estimate, unit: str = "") -> str:
    """A compact 95 % interval: "28.9–30.7 %" (empty when unknown)."""
    if estimate is None or estimate.lower is None:
        return ""
    return f"{_bare(estimate.lower, unit)} – {_bare(estimate.upper, unit)}{_SUFFIX.get(unit, '')}"


@register.filter
def kpi_delta_range(estimate, unit: str = "") -> str:
    """A compact signed interval for an uplift: "-6.4 – -0.1 pp"."""
    if estimate is None or estimate.lower is None:
        return ""
    suffix = " pp" if unit == "pct" else _SUFFIX.get(unit, "")
    return f"{_bare(estimate.lower, unit, True)} – {_bare(estimate.upper, unit, True)}{suffix}"


@register.filter
def humanize_key(value: str) -> str:
    """contact_cost -> contact cost."""
    return str(value).replace("_", " ")
