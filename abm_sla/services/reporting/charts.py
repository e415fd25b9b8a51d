"""The reports' charts as PNG bytes, each titled for the question it answers."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from abm_sla.domain import scorecard as sc
from abm_sla.domain.policy import SlaPolicy
from abm_sla.services.reporting.common import CHART_TITLES, CLOCK_LABELS


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _empty_note(axis: plt.Axes, shown: bool) -> None:
    if not shown:
        axis.text(0.5, 0.5, "no data in this period", ha="center", va="center", transform=axis.transAxes,
                  color="#777")


def chart_mqas_by_month(volume: pd.DataFrame) -> bytes:
    """Grouped bars: MQAs per tier per month, commitment as a tick per bar."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    months = sorted(volume["month"].unique())
    x = np.arange(len(months))
    width = 0.26
    for offset, tier in enumerate(sc.TIERS):
        rows = volume[volume["tier"] == tier].set_index("month").reindex(months)
        positions = x + (offset - 1) * width
        axis.bar(positions, rows["mqas"].fillna(0), width, label=f"Tier {tier}")
        if rows["commitment"].notna().any():
            axis.scatter(positions, rows["commitment"], marker="_", s=300, color="black", zorder=3)
    axis.set_xticks(x, months)
    axis.set_ylabel("MQAs")
    axis.set_title(CHART_TITLES["mqas_by_month"] + "\n(bars: MQAs fired; — commitment, pro-rated)", fontsize=10)
    axis.legend(fontsize=8)
    _empty_note(axis, bool(volume["mqas"].sum()))
    return _png(figure)


def chart_response_times(responses: pd.DataFrame, policy: SlaPolicy) -> bytes:
    """Per tier: histogram of business-hour first-touch response with the tier's window."""
    figure, axes = plt.subplots(1, 3, figsize=(9, 2.8), sharey=False)
    for axis, tier in zip(axes, sc.TIERS, strict=True):
        values = responses.loc[responses["tier"] == tier, "response_bh"].dropna()
        window = sc.tier_window(policy, tier)
        if len(values):
            axis.hist(values, bins=min(20, max(5, len(values) // 3)), color="#4C72B0")
        if window.kind == "business_hours":
            axis.axvline(window.amount, color="#C44E52", linestyle="--", label=f"window {window.amount:g} bh")
            axis.legend(fontsize=7)
        axis.set_title(f"Tier {tier} ({sc.window_text(window)})", fontsize=9)
        axis.set_xlabel("business hours to first touch", fontsize=8)
        _empty_note(axis, bool(len(values)))
    figure.suptitle(CHART_TITLES["response_times"] + " (dashed: the tier's window)", fontsize=10)
    return _png(figure)


def chart_compliance_trend(trend: pd.DataFrame) -> bytes:
    """Met % per week for each clock."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    for clock in sc.CLOCKS:
        rows = trend[trend["clock"] == clock]
        axis.plot(rows["week"], rows["met_pct"], marker="o", label=CLOCK_LABELS[clock])
    axis.set_ylim(0, 105)
    axis.set_ylabel("met % of decided clocks")
    axis.set_title(CHART_TITLES["compliance_trend"] + "\n(met % of clocks decided, by due week)", fontsize=10)
    axis.tick_params(axis="x", labelrotation=45, labelsize=7)
    axis.legend(fontsize=8)
    _empty_note(axis, bool(trend["met_pct"].notna().any()))
    return _png(figure)


def chart_backtest(backtest: pd.DataFrame, policy: SlaPolicy, current: int, proposed: int) -> bytes:
    """Rejection and acceptance % per threshold, MQA count on a second axis, the band shaded."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    axis.plot(backtest["threshold"], backtest["rejection_pct"], marker=".", color="#C44E52", label="rejection %")
    axis.plot(backtest["threshold"], backtest["acceptance_pct"], marker=".", color="#55A868", label="acceptance %")
    band = policy.targets.rejection_rate if policy.targets else None
    if band is not None:
        axis.axhspan(band.min_pct or 0, band.max_pct or 100, color="#C44E52", alpha=0.12, label="rejection band")
    axis.axvline(current, color="gray", linestyle=":", label=f"current {current}")
    if proposed != current:
        axis.axvline(proposed, color="black", linestyle="--", label=f"proposed {proposed}")
    axis.set_xlabel("hand-off threshold (total points)")
    axis.set_ylabel("acceptance % of MQAs, rejection % of verdicts")
    other = axis.twinx()
    other.bar(backtest["threshold"], backtest["mqas"], alpha=0.2, color="#4C72B0")
    other.set_ylabel("MQAs fired")
    axis.set_zorder(other.get_zorder() + 1)
    axis.patch.set_visible(False)
    axis.legend(fontsize=7, loc="upper left")
    axis.set_title(CHART_TITLES["threshold_backtest"], fontsize=10)
    _empty_note(axis, bool(backtest["mqas"].sum()))
    return _png(figure)
