"""Plotly figures for the console, as plain functions: data in, a JSON-able figure dict out.

Pages embed the dict with `json_script` and `static/console/console.js` draws it with the Plotly
bundle that ships inside the `plotly` Python package (served by `dashboards.views.plotly_js`), so
no chart needs the internet.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

if TYPE_CHECKING:  # the selectors build these figures
    from crm_console.dashboards.selectors import KpiComparison, TrendPoint

POLICY_COLOUR = "#1f5fbf"
HOLDOUT_COLOUR = "#7a8599"
POSITIVE_COLOUR = "#1c7c3a"
NEGATIVE_COLOUR = "#b3261e"
FONT = dict(family='system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif', size=13,
            color="#1b2430")


TEMPLATE = "plotly_white"


@cache
def _template_json() -> str:
    """The template as JSON, made once. Named in `update_layout`, plotly copies and validates
    the whole template for every figure (about 30 ms each, most of the dashboard's drawing)."""
    return json.dumps(json.loads(go.Figure(layout=dict(template=TEMPLATE)).to_json())["layout"]
                      ["template"])


def _layout(fig: go.Figure, *, height: int = 320, **extra: Any) -> go.Figure:
    settings = dict(
        template={}, height=height, font=FONT, margin=dict(l=60, r=20, t=40, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1),
        hoverlabel=dict(font_size=12), paper_bgcolor="rgba(0,0,0,0)",
        title=dict(font=dict(size=14)),
    )
    settings.update(extra)
    fig.update_layout(**settings)
    return fig


def as_dict(fig: go.Figure) -> dict[str, Any]:
    """Plain JSON types only (numpy arrays become lists), ready for `json_script`; the layout's
    template is TEMPLATE's (`_layout` leaves it empty while the figure is built)."""
    figure = json.loads(fig.to_json())
    figure["layout"]["template"] = json.loads(_template_json())
    return figure


def uplift_figure(kpis: Sequence[KpiComparison]) -> dict[str, Any]:
    """Relative uplift of the policy over the holdout per KPI, with 95 % intervals (a forest plot)."""
    rows = [k for k in kpis if k.relative_uplift.value is not None]
    labels = [k.label for k in rows]
    values = [100 * k.relative_uplift.value for k in rows]
    plus = [100 * (k.relative_uplift.upper - k.relative_uplift.value) for k in rows]
    minus = [100 * (k.relative_uplift.value - k.relative_uplift.lower) for k in rows]
    colours = [POSITIVE_COLOUR if k.uplift.lower is not None and k.uplift.lower > 0 else
               NEGATIVE_COLOUR if k.uplift.upper is not None and k.uplift.upper < 0 else HOLDOUT_COLOUR
               for k in rows]
    trace = go.Scatter(
        x=values, y=labels, mode="markers", marker=dict(size=11, color=colours),
        error_x=dict(type="data", symmetric=False, array=plus, arrayminus=minus, thickness=2,
                     width=6, color="#5b6575"),
        hovertemplate="%{y}: %{x:+.1f} %<extra></extra>", name="Uplift",
    )
    return _with_layout([trace.to_plotly_json()], _uplift_layout(len(rows)))


@cache
def _uplift_layout(n_rows: int) -> str:
    fig = go.Figure()
    fig.add_vline(x=0, line_color="#5b6575", line_dash="dot")
    _layout(fig, height=max(220, 46 * n_rows + 90), showlegend=False,
            title=dict(text="Uplift vs holdout (relative, 95 % CI)", font=dict(size=14)))
    fig.update_xaxes(title_text="% change vs holdout", ticksuffix=" %", zeroline=False)
    fig.update_yaxes(autorange="reversed")
    return json.dumps(json.loads(fig.to_json())["layout"])


def _subplot_trace(trace: go.Scatter | go.Bar, col: int) -> dict[str, Any]:
    """A trace as `fig.add_trace(trace, row=1, col=col)` leaves it in a 1-row subplot figure."""
    trace.xaxis, trace.yaxis = ("x", "y") if col == 1 else (f"x{col}", f"y{col}")
    return trace.to_plotly_json()


def _with_layout(traces: list[dict[str, Any]], layout_json: str) -> dict[str, Any]:
    """`as_dict` of a figure with these traces and a layout built (and cached) without them."""
    from plotly.io.json import to_json_plotly

    figure = {"data": json.loads(to_json_plotly(traces)), "layout": json.loads(layout_json)}
    figure["layout"]["template"] = json.loads(_template_json())
    return figure


@cache
def _trends_layout() -> str:
    # the layout does not depend on the data: built once (make_subplots costs ~40 ms a call)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Revenue per decision", "Open rate"),
                        horizontal_spacing=0.12)
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    _layout(fig, height=340, margin=dict(l=50, r=20, t=70, b=50),
            legend=dict(orientation="h", yanchor="bottom", y=1.14, x=0))
    return json.dumps(json.loads(fig.to_json())["layout"])


def trends_figure(points: Sequence[TrendPoint]) -> dict[str, Any]:
    """Weekly revenue per decision and open rate, policy vs holdout.

    The running week is left out: its outcomes are still arriving, so it would read as a drop.
    """
    traces = []
    for group, colour in (("Policy", POLICY_COLOUR), ("Holdout", HOLDOUT_COLOUR)):
        mine = [p for p in points if p.group == group and not p.partial]
        weeks = [p.week_start for p in mine]
        traces.append(_subplot_trace(go.Scatter(
            x=weeks, y=[p.revenue_per_decision for p in mine], name=group, mode="lines+markers",
            line=dict(color=colour, width=2.5), legendgroup=group,
            hovertemplate="week of %{x}: %{y:.2f}<extra>" + group + "</extra>",
        ), col=1))
        traces.append(_subplot_trace(go.Scatter(
            x=weeks, y=[p.open_rate for p in mine], name=group, mode="lines+markers",
            line=dict(color=colour, width=2.5), legendgroup=group, showlegend=False,
            hovertemplate="week of %{x}: %{y:.1%}<extra>" + group + "</extra>",
        ), col=2))
    return _with_layout(traces, _trends_layout())


MIX_DIMENSIONS = (("channel", "Channel"), ("offer", "Offer"), ("window", "Send window"))


@cache
def _action_mix_layout() -> str:
    fig = make_subplots(rows=1, cols=3, subplot_titles=[title for _, title in MIX_DIMENSIONS],
                        horizontal_spacing=0.08)
    for col in range(1, len(MIX_DIMENSIONS) + 1):
        fig.update_yaxes(tickformat=".0%", row=1, col=col)
    fig.update_layout(barmode="group")
    _layout(fig, height=360, margin=dict(l=50, r=20, t=70, b=90),
            legend=dict(orientation="h", yanchor="bottom", y=1.14, x=0))
    return json.dumps(json.loads(fig.to_json())["layout"])


def action_mix_figure(mix: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Share of decisions by channel, offer and send window, policy vs holdout."""
    traces = []
    for col, (dim, _) in enumerate(MIX_DIMENSIONS, start=1):
        groups = mix.get(dim, {})
        names = sorted({name for values in groups.values() for name in values})
        for group, colour in (("Policy", POLICY_COLOUR), ("Holdout", HOLDOUT_COLOUR)):
            values = groups.get(group, {})
            traces.append(_subplot_trace(go.Bar(
                x=names, y=[values.get(name, 0.0) for name in names], name=group,
                marker_color=colour, legendgroup=group, showlegend=col == 1,
                hovertemplate="%{x}: %{y:.1%}<extra>" + group + "</extra>",
            ), col=col))
    return _with_layout(traces, _action_mix_layout())


def shap_figure(contributions: Sequence[tuple[str, float]], *, base_value: float,
                score: float | None = None, top: int = 10, title: str = "") -> dict[str, Any]:
    """A SHAP waterfall: from the base value (a typical customer) to this customer's score."""
    ordered = sorted(contributions, key=lambda item: abs(item[1]), reverse=True)
    # features that did not move the score are noise on a waterfall: fold them into "other"
    moving = [item for item in ordered if abs(item[1]) > 1e-6]
    shown = moving[:top]
    rest = [item for item in ordered if item not in shown]
    labels = [label for label, _ in shown]
    values = [float(value) for _, value in shown]
    if rest:
        labels.append(f"{len(rest)} other features" if shown else
                      f"none of the {len(rest)} features moved the score")
        values.append(float(sum(value for _, value in rest)))
    total = base_value + sum(values) if score is None else score
    fig = go.Figure(go.Waterfall(
        orientation="h", measure=["absolute", *["relative"] * len(values), "total"],
        y=["Typical customer (base value)", *labels, "This customer's score"],
        x=[base_value, *values, total],
        text=[f"{base_value:.3f}", *[f"{v:+.3f}" for v in values], f"{total:.3f}"],
        textposition="auto", cliponaxis=False,
        increasing=dict(marker=dict(color=POSITIVE_COLOUR)),
        decreasing=dict(marker=dict(color=NEGATIVE_COLOUR)),
        totals=dict(marker=dict(color=POLICY_COLOUR)),
        connector=dict(line=dict(color="#aab3c0", width=1)),
        hovertemplate="%{y}: %{x:.3f}<extra></extra>",
    ))
    _layout(fig, height=90 + 34 * (len(values) + 2), showlegend=False,
            title=dict(text=title, font=dict(size=14)) if title else {},
            margin=dict(l=20, r=70, t=40 if title else 20, b=40))
    fig.update_yaxes(autorange="reversed", automargin=True)
    return as_dict(fig)


def learning_curve_figure(steps: Sequence[float], returns: Sequence[float], *,
                          baseline: float | None = None) -> dict[str, Any]:
    fig = go.Figure(go.Scatter(
        x=list(steps), y=list(returns), mode="lines+markers", name="Mean return",
        line=dict(color=POLICY_COLOUR, width=2.5),
        hovertemplate="%{x:,} steps: %{y:.2f}<extra></extra>",
    ))
    if baseline is not None:
        fig.add_hline(y=baseline, line_dash="dot", line_color=HOLDOUT_COLOUR,
                      annotation_text="today's rules", annotation_position="bottom right")
    fig.update_xaxes(title_text="Simulated customer-days")
    fig.update_yaxes(title_text="Mean return per customer")
    return as_dict(_layout(fig, height=300, showlegend=False))


def population_curves_figure(members: Sequence[dict[str, Any]], *,
                             baseline: float | None = None) -> dict[str, Any]:
    """Every member's learning curve of a population run; the kept member drawn bold.

    members: {"name": str, "steps": [...], "returns": [...], "kept": bool}
    """
    palette = ["#9aa4b2", "#e07b00", "#0f8b8d", "#8e44ad", "#c2185b", "#5d4037", "#455a64"]
    fig = go.Figure()
    for i, member in enumerate(members):
        kept = bool(member.get("kept"))
        fig.add_trace(go.Scatter(
            x=list(member["steps"]), y=list(member["returns"]), mode="lines",
            name=member["name"] + (" (kept)" if kept else ""),
            line=dict(color=POLICY_COLOUR if kept else palette[i % len(palette)],
                      width=3 if kept else 1.5, dash=None if kept else "dot"),
            hovertemplate="%{x:,} steps: %{y:.2f}<extra>" + member["name"] + "</extra>",
        ))
    if baseline is not None:
        fig.add_hline(y=baseline, line_dash="dot", line_color=HOLDOUT_COLOUR,
                      annotation_text="today's rules", annotation_position="bottom right")
    fig.update_xaxes(title_text="Simulated customer-days")
    fig.update_yaxes(title_text="Mean return per customer")
    return as_dict(_layout(fig, height=320))


def action_distribution_figure(by_segment: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Stacked share of chosen actions (or channels) per customer segment."""
    segments = list(by_segment)
    names = sorted({name for values in by_segment.values() for name in values})
    fixed = {"No contact": "#9aa4b2", "Email": "#1f5fbf", "SMS": "#e07b00", "Push": "#1c7c3a",
             "Call centre": "#8e44ad"}
    palette = ["#b3261e", "#0f8b8d", "#c2185b", "#5d4037", "#455a64"]
    names = sorted(names, key=lambda n: (list(fixed).index(n) if n in fixed else len(fixed), n))
    fig = go.Figure()
    for i, name in enumerate(names):
        fig.add_trace(go.Bar(
            y=segments, x=[by_segment[s].get(name, 0.0) for s in segments], name=name,
            orientation="h", marker_color=fixed.get(name, palette[i % len(palette)]),
            hovertemplate="%{y}: %{x:.1%}<extra>" + name + "</extra>",
        ))
    fig.update_layout(barmode="stack", legend=dict(traceorder="normal"))
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    fig.update_yaxes(autorange="reversed", automargin=True)
    return as_dict(_layout(fig, height=max(220, 50 * len(segments) + 110)))


def ope_figure(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Estimated value per policy and estimator with 95 % intervals.

    rows: {"policy": str, "method": str, "value": float, "lower": float, "upper": float}
    """
    fig = go.Figure()
    colours = {"ips": "#7a8599", "snips": "#e07b00", "dr": POLICY_COLOUR, "dm": "#8e44ad",
               "sndr": "#0f8b8d"}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        fig.add_trace(go.Scatter(
            x=[r["value"] for r in mine], y=[r["policy"] for r in mine], mode="markers",
            name=method.upper(), marker=dict(size=11, color=colours.get(method, "#1b2430")),
            error_x=dict(type="data", symmetric=False,
                         array=[r["upper"] - r["value"] for r in mine],
                         arrayminus=[r["value"] - r["lower"] for r in mine]),
            hovertemplate="%{y}: %{x:.3f}<extra>" + method.upper() + "</extra>",
        ))
    fig.update_xaxes(title_text="Estimated reward per decision")
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_layout(scattermode="group")
    return as_dict(_layout(fig, height=max(240, 60 * len({r['policy'] for r in rows}) + 120)))


def calibration_figure(points: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Predicted against observed rates, one colour per rate; the diagonal is a perfect model.

    points: {"rate": str, "group": str, "observed": float, "predicted": float, "rows": int}
    """
    fig = go.Figure()
    colours = ["#1f5fbf", "#e07b00", "#1c7c3a", "#b3261e"]
    for i, rate in enumerate(dict.fromkeys(p["rate"] for p in points)):
        mine = [p for p in points if p["rate"] == rate]
        fig.add_trace(go.Scatter(
            x=[p["observed"] for p in mine], y=[p["predicted"] for p in mine], mode="markers",
            name=rate, marker=dict(size=9, color=colours[i % len(colours)]),
            text=[f"{p['group']} ({p['rows']:,} decisions)" for p in mine],
            hovertemplate="%{text}: observed %{x:.2%}, predicted %{y:.2%}<extra>" + rate
                          + "</extra>",
        ))
    top = max([max(p["observed"], p["predicted"]) for p in points] or [1.0]) * 1.05
    fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="Perfect",
                             line=dict(color="#9aa4b2", dash="dot"), hoverinfo="skip"))
    fig.update_xaxes(title_text="Observed per decision", tickformat=".1%", range=[0, top])
    fig.update_yaxes(title_text="Predicted per decision", tickformat=".1%", range=[0, top])
    return as_dict(_layout(fig, height=380))
