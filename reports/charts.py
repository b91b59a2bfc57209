"""Charts of capability profiles and runner data (matplotlib Figures, no pyplot).

Every function takes tidy DataFrames and returns a ``matplotlib.figure.Figure``;
``save_png`` writes it. Team, scenario and demand names are
drawn literally (``$`` is escaped so no name is read as mathtext).

Radar or interval chart: a radar is readable up to about two dozen spokes
(``RADAR_MAX_AXES``). Demand groups with more axes (typically the ~50
substrate abilities), or fewer than three (the two mode abilities), are drawn
as interval charts instead: one row per ability, the posterior mean as a dot
and the HDI as a bar, which stays readable at any number of rows.

Team colours: every chart that draws teams takes ``styles``, a mapping from
team name to ``TeamStyle`` (colour, line style, marker) built by
``team_styles`` from a sorted team list. A report builds one mapping from all
its teams and passes it to every chart, so a team has one colour throughout;
a chart drawn alone without ``styles`` builds the mapping from its own teams.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple, Sequence

import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle


def subplots(*grid, figsize, **kwargs):
    """A ``Figure`` and its axes, as ``pyplot.subplots`` gives them, without
    pyplot: no GUI backend is chosen and no global figure registry fills up,
    so drawing needs no display and importing this module changes nothing."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kwargs)


RADAR_MIN_AXES = 3
RADAR_MAX_AXES = 24
# Colour-blind-safe categorical palette (Okabe-Ito), in a fixed order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
# More teams than PALETTE colours: the colours repeat, and each pass through
# the palette changes the line style and the marker. Sampling a continuous
# colormap instead would give every team its own colour, but beyond about
# eight teams neighbouring samples are hard to tell apart, and harder still
# for colour-blind readers; a repeated Okabe-Ito colour with another dash and
# marker stays distinguishable (also in greyscale print). Past
# len(PALETTE) * len(LINESTYLES) teams the styles repeat too: a legend that
# long is unreadable anyway.
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")
GROUP_TITLES = {"substrate": "substrates", "family": "substrate families", "mode": "mode (resident / visitor)", "behaviour": "behaviours"}


def mpl_text(text) -> str:
    """A name as literal matplotlib text: ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


def pretty(name) -> str:
    """A name for a chart label: runs of underscores become one space."""
    return " ".join(w for w in mpl_text(name).split("_") if w) or mpl_text(name)


def axis_label(name: str, width: int = 14) -> str:
    """Demand name on two or three short lines: underscores become spaces."""
    return "\n".join(textwrap.wrap(pretty(name), width=width, break_long_words=True)[:3])


class TeamStyle(NamedTuple):
    """How one team is drawn in every chart of a report."""

    colour: str
    linestyle: str
    marker: str


def _style_at(position: int) -> TeamStyle:
    palette_pass = position // len(PALETTE)
    return TeamStyle(PALETTE[position % len(PALETTE)], LINESTYLES[palette_pass % len(LINESTYLES)],
                     MARKERS[palette_pass % len(MARKERS)])


def team_styles(teams: Iterable[str]) -> dict[str, TeamStyle]:
    """Team name -> TeamStyle, by position in the sorted, de-duplicated team
    list: the same set of teams always gets the same styles, whatever order
    or subset a chart draws them in."""
    return {team: _style_at(i) for i, team in enumerate(sorted({str(t) for t in teams}))}


def styles_for(teams: Iterable[str], styles: Mapping[str, TeamStyle] | None = None) -> Mapping[str, TeamStyle]:
    """``styles`` extended to cover ``teams``; built from ``teams`` alone when
    ``styles`` is None. A team the mapping lacks gets a style past the
    mapping's own positions, so it shares no style with a mapped team and the
    chart still draws instead of failing."""
    drawn = sorted({str(t) for t in teams})
    if styles is None:
        return team_styles(drawn)
    missing = [t for t in drawn if t not in styles]
    if not missing:
        return styles
    return {**styles, **{t: _style_at(len(styles) + k) for k, t in enumerate(missing)}}


def legend_line(style: TeamStyle, with_marker: bool = False):
    """A legend entry drawn in a team's style (with its marker where the
    chart's lines carry markers)."""
    marker = dict(marker=style.marker, markersize=4) if with_marker else {}
    return Line2D([], [], color=style.colour, linestyle=style.linestyle, linewidth=2, **marker)


def save_png(fig, path: Path, dpi: int = 110) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")
    return path


def use_radar(n_axes: int) -> bool:
    return RADAR_MIN_AXES <= n_axes <= RADAR_MAX_AXES


# ------------------------------------------------------------ ability charts


def radar_limits(frames: Sequence[pd.DataFrame]) -> tuple[float, float]:
    """Radial limits that hold every HDI band of ``frames`` (columns hdi_low,
    hdi_high; NaN rows ignored), with a little padding. Small multiples
    share one pair so every team is drawn on the same scale."""
    low = min(float(np.nanmin(f["hdi_low"].to_numpy(dtype=float))) for f in frames)
    high = max(float(np.nanmax(f["hdi_high"].to_numpy(dtype=float))) for f in frames)
    pad = 0.08 * (high - low if high > low else 1.0)
    return low - pad, high + pad


_radar_limits = radar_limits  # the earlier private name


def radar_chart(profiles: Sequence[pd.DataFrame], labels: Sequence[str], abilities: Sequence[str], title: str,
                styles: Mapping[str, TeamStyle] | None = None, limits: tuple[float, float] | None = None,
                compact: bool = False):
    """Radar of posterior means (lines) with HDI bands (shaded), one trace per
    frame in ``profiles`` (each indexed by ability with mean, hdi_low,
    hdi_high; an ability a frame lacks, or holds NaN for, is a gap in its
    trace), styled by its team name in ``labels`` (see ``team_styles``).

    The radius starts at the lowest HDI bound, not at zero: abilities live on
    a latent scale that can be negative; ring labels give the values. The
    centre is left hollow (the innermost ring is a circle, not a point), so
    the ring labels and the spokes' ends do not pile up there. ``limits``
    fixes the radial range (``radar_limits`` of several teams: the same scale
    for every chart of a small multiple); ``compact`` draws a small chart for
    a grid of them, without a legend."""
    n = len(abilities)
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    closed = np.append(theta, theta[0])
    size = (3.5, 3.5) if compact else ((7.2, 7.2) if n > 12 else (6, 6))
    fig = Figure(figsize=size)
    ax = fig.add_subplot(projection="polar")
    ax.set_theta_offset(np.pi / 2)
    ax.set_theta_direction(-1)
    frames = [frame.reindex(abilities) for frame in profiles]
    r_low, r_high = limits if limits is not None else radar_limits(frames)
    styles = styles_for(labels, styles)
    for frame, label in zip(frames, labels):
        _radar_trace(ax, closed, frame, label, styles[str(label)], r_low, shaded=0.18 if len(profiles) > 1 else 0.3)
    _radar_axes(ax, theta, abilities, r_low, r_high, compact)
    ax.set_title(mpl_text(title), fontsize=10 if compact else 11, pad=14 if compact else 24)
    if not compact:
        handles = [legend_line(styles[str(lbl)], with_marker=True) for lbl in labels]
        band = Rectangle((0, 0), 1, 1, color="#888888", alpha=0.3)
        fig.legend(handles + [band], [mpl_text(lbl) for lbl in labels] + ["HDI band"],
                   loc="lower center", ncol=min(len(labels) + 1, 5), fontsize=8, frameon=False)
    return fig


def _radar_trace(ax, closed, frame: pd.DataFrame, label, style: TeamStyle, r_low: float, shaded: float) -> None:
    """One team's trace: its posterior means as a closed line, its HDI as a
    band where both bounds are known (a gap where they are not)."""
    def loop(column):  # the first spoke again at the end, so the line closes
        values = frame[column].to_numpy(dtype=float)
        return np.append(values, values[0])

    mean, low, high = loop("mean"), loop("hdi_low"), loop("hdi_high")
    known = np.isfinite(low) & np.isfinite(high)
    ax.fill_between(closed, np.where(known, low, r_low), np.where(known, high, r_low), where=known,
                    color=style.colour, alpha=shaded, linewidth=0)
    ax.plot(closed, mean, color=style.colour, linewidth=1.8, linestyle=style.linestyle, marker=style.marker,
            markersize=3, label=mpl_text(label))


def _radar_axes(ax, theta, abilities: Sequence[str], r_low: float, r_high: float, compact: bool) -> None:
    """The radial range, rings and spoke labels of a radar."""
    ax.set_ylim(r_low, r_high)
    # A hollow centre a quarter of the radius wide: the lowest ring is a
    # circle, so its label does not sit on the pole where every spoke meets.
    ax.set_rorigin(r_low - 0.33 * (r_high - r_low))
    # Few ring labels, set between the first two spokes so no line crosses
    # them, on a white ground so a band behind them does not hide them.
    rings = [t for t in matplotlib.ticker.MaxNLocator(4).tick_values(r_low, r_high) if r_low <= t <= r_high]
    ax.set_yticks(rings)
    ax.set_yticklabels([f"{t:g}" for t in rings])
    for tick in ax.get_yticklabels():
        tick.set_bbox(dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.8))
    n = len(abilities)
    ax.set_rlabel_position(np.degrees(theta[1] / 2) if n > 1 else 0)
    ax.set_xticks(theta)
    label_size = 8 if compact else (7.5 if n > 12 else 9)
    ax.set_xticklabels([axis_label(a, 16 if compact else 14) for a in abilities], fontsize=label_size)
    ax.tick_params(axis="x", pad=5 if compact else 14)
    ax.tick_params(axis="y", labelsize=7, labelcolor="#555555")
    ax.grid(color="#cccccc", linewidth=0.6)


def interval_chart(profiles: Sequence[pd.DataFrame], labels: Sequence[str], abilities: Sequence[str], title: str,
                   styles: Mapping[str, TeamStyle] | None = None,
                   xlabel: str = "ability (posterior mean, bar = HDI)"):
    """Dot-and-bar chart: one row per ability, the posterior mean as a dot and
    the HDI as a horizontal bar; several teams are dodged within a row, each
    styled by its team name in ``labels`` (see ``team_styles``)."""
    n, k = len(abilities), len(profiles)
    row_height = 0.22 + 0.07 * k
    fig, ax = subplots(figsize=(7.2, max(1.6, 0.9 + row_height * n)))
    y = np.arange(n)[::-1].astype(float)
    offsets = (np.arange(k) - (k - 1) / 2) * (0.7 / max(k, 1)) if k > 1 else np.zeros(1)
    styles = styles_for(labels, styles)
    for i, (frame, label) in enumerate(zip(profiles, labels)):
        frame = frame.reindex(abilities)
        style = styles[str(label)]
        yy = y - offsets[i]
        ax.hlines(yy, frame["hdi_low"], frame["hdi_high"], color=style.colour, linewidth=2.2, alpha=0.55)
        ax.plot(frame["mean"], yy, linestyle="none", marker=style.marker, color=style.colour, markersize=4,
                label=mpl_text(label))
    for row in y[1::2]:  # banding guides the eye from a label to its row
        ax.axhspan(row - 0.5, row + 0.5, color="#f4f4f4", zorder=0)
    if n > 20:  # tall chart: values readable at the top as well
        ax.tick_params(axis="x", labeltop=True, top=True)
    ax.set_yticks(y)
    ax.set_yticklabels([pretty(a) for a in abilities], fontsize=8)
    ax.set_ylim(-0.7, n - 0.3)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel(mpl_text(xlabel), fontsize=9)
    ax.set_title(mpl_text(title), fontsize=11, pad=22 if n > 20 else 6)
    if k > 1:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def ability_chart(profiles: Sequence[pd.DataFrame], labels: Sequence[str], abilities: Sequence[str], title: str,
                  styles: Mapping[str, TeamStyle] | None = None):
    """Radar when the group has RADAR_MIN_AXES..RADAR_MAX_AXES abilities,
    interval chart otherwise (see the module docstring)."""
    chart = radar_chart if use_radar(len(abilities)) else interval_chart
    return chart(profiles, labels, abilities, title, styles=styles)


# ------------------------------------------------------------ other charts


def importance_chart(importances: pd.DataFrame, top: int = 30):
    """Horizontal bars of the ``top`` largest assessor feature importances."""
    shown = importances.sort_values("importance", ascending=False).head(top).iloc[::-1]
    fig, ax = subplots(figsize=(7.2, max(1.8, 0.6 + 0.24 * len(shown))))
    ax.barh(np.arange(len(shown)), shown["importance"], color=PALETTE[0])
    ax.set_yticks(np.arange(len(shown)))
    ax.set_yticklabels([pretty(f) for f in shown["feature"]], fontsize=8)
    ax.set_xlabel("importance", fontsize=9)
    more = len(importances) - len(shown)
    ax.set_title(f"assessor feature importances (top {len(shown)}" + (f" of {len(importances)})" if more else ")"),
                 fontsize=11)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    return fig


def substrate_heatmap(per_substrate: pd.DataFrame, normalisation: str):
    """Substrates (rows) x teams (columns), cell = mean normalised score,
    value written in the cell. ``per_substrate`` has team, level, score."""
    grid = per_substrate.pivot(index="level", columns="team", values="score").sort_index()
    n_rows, n_cols = grid.shape
    fig, ax = subplots(figsize=(max(4.5, 1.6 + 0.85 * n_cols), max(2.0, 0.8 + 0.24 * n_rows)))
    ax.set_facecolor("#e6e6e6")  # a team without scores on a substrate shows grey, not a colour
    image = ax.imshow(grid.to_numpy(dtype=float), aspect="auto", cmap="viridis")
    ax.set_xticks(np.arange(n_cols))
    ax.set_xticklabels([axis_label(t, 12) for t in grid.columns], fontsize=8, rotation=30, ha="right")
    ax.set_yticks(np.arange(n_rows))
    ax.set_yticklabels([pretty(s) for s in grid.index], fontsize=7.5)
    values = grid.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for r in range(n_rows):
        for c in range(n_cols):
            v = values[r, c]
            if np.isfinite(v):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6.5,
                        color="white" if v < mid else "black")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label=f"mean score ({normalisation})")
    title = f"per-substrate scores ({normalisation} normalisation)"
    if not np.isfinite(values).all():
        title += "\ngrey: no scores for that team"
    ax.set_title(title, fontsize=11)
    return fig


def focal_background_chart(means: pd.DataFrame, styles: Mapping[str, TeamStyle] | None = None):
    """Per (team, scenario) mean focal vs background per-capita return, one
    colour per team (``styles``, see ``team_styles``), with the line
    focal = background. Points above the line: the background earned more than
    the focal team did."""
    fig, ax = subplots(figsize=(6.4, 5.6))
    teams = sorted(means["team"].unique())
    styles = styles_for(teams, styles)
    for team in teams:
        own = means[means["team"] == team]
        style = styles[str(team)]
        ax.scatter(own["focal"], own["background"], s=18, alpha=0.75, color=style.colour, marker=style.marker,
                   label=mpl_text(team))
    lo = float(np.nanmin(means[["focal", "background"]].to_numpy()))
    hi = float(np.nanmax(means[["focal", "background"]].to_numpy()))
    ax.plot([lo, hi], [lo, hi], color="#888888", linewidth=1, linestyle="--", label="focal = background")
    ax.set_xlabel("focal per-capita return (mean over episodes)", fontsize=9)
    ax.set_ylabel("background per-capita return", fontsize=9)
    ax.set_title("focal vs background returns per scenario", fontsize=11)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(color="#eeeeee", linewidth=0.6)
    return fig


def gini_chart(episodes: pd.DataFrame, columns: Sequence[str]):
    """Box plots of per-episode Gini coefficients of return, per team, one
    panel per Gini column (focal players, all players)."""
    teams = sorted(episodes["team"].unique())[::-1]  # boxplot rows run bottom-up: first team on top
    fig, axes = subplots(1, len(columns), figsize=(3.6 * len(columns) + 1.0, max(2.4, 0.9 + 0.38 * len(teams))),
                         squeeze=False, sharey=True)
    for ax, column in zip(axes[0], columns):
        data = [episodes.loc[episodes["team"] == t, column].dropna().to_numpy() for t in teams]
        ax.boxplot(data, orientation="horizontal", widths=0.6)
        ax.set_yticks(np.arange(1, len(teams) + 1))
        ax.set_yticklabels([mpl_text(t) for t in teams], fontsize=8)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel(column.replace("_", " ") + " (0 = equal, 1 = one player takes all)", fontsize=8)
        ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    fig.suptitle("inequality of returns per episode", fontsize=11)
    return fig


def timeseries_chart(curves: pd.DataFrame, value: str, ylabel: str, title: str, max_panels: int = 6,
                     xlabel: str = "step", styles: Mapping[str, TeamStyle] | None = None):
    """Small multiples, one panel per scenario (at most ``max_panels``), one
    line per team (styled by ``styles``, see ``team_styles``): ``value``
    against ``step`` (columns team, scenario, step)."""
    scenarios = list(dict.fromkeys(curves["scenario"]))[:max_panels]
    teams = sorted(curves["team"].unique())
    styles = styles_for(teams, styles)
    cols = min(3, len(scenarios))
    rows = int(np.ceil(len(scenarios) / cols))
    fig, axes = subplots(rows, cols, figsize=(3.6 * cols + 1.4, 2.7 * rows), squeeze=False)
    for ax in axes.ravel()[len(scenarios):]:
        ax.axis("off")
    for ax, scenario in zip(axes.ravel(), scenarios):
        for team in teams:
            own = curves[(curves["scenario"] == scenario) & (curves["team"] == team)].sort_values("step")
            if len(own):
                style = styles[str(team)]
                ax.plot(own["step"], own[value], color=style.colour, linestyle=style.linestyle, linewidth=1.5,
                        label=mpl_text(team))
        ax.set_title(mpl_text(scenario), fontsize=8.5)
        ax.tick_params(labelsize=7)
        ax.grid(color="#eeeeee", linewidth=0.6)
        ax.set_xlabel(xlabel, fontsize=8)
    axes[0, 0].set_ylabel(ylabel, fontsize=8)
    handles = [legend_line(styles[str(t)]) for t in teams]
    fig.legend(handles, [mpl_text(t) for t in teams], loc="upper left", bbox_to_anchor=(1.0, 0.95),
               fontsize=8, frameon=False)
    fig.suptitle(mpl_text(title), fontsize=11)
    fig.tight_layout()
    return fig


def pit_chart(bins: pd.DataFrame):
    """Histogram of the probability integral transform of the fitted cells
    (columns lo, hi, observed, expected, low, high, agrees): bars are the
    observed share of cells per bin, the dashed line the share a uniform PIT
    gives and the grey band its binomial interval; bars outside the band are
    drawn in the palette's warning colour."""
    fig, ax = subplots(figsize=(6.4, 3.4))
    width = (bins["hi"] - bins["lo"]).to_numpy()
    centres = ((bins["lo"] + bins["hi"]) / 2).to_numpy()
    colours = [PALETTE[0] if ok else PALETTE[3] for ok in bins["agrees"]]
    ax.bar(centres, bins["observed"], width=width * 0.9, color=colours, zorder=2)
    lo, hi = float(bins["lo"].min()), float(bins["hi"].max())
    ax.fill_between([lo, hi], float(bins["low"].min()), float(bins["high"].max()), color="#888888", alpha=0.2,
                    linewidth=0, zorder=1)
    ax.plot([lo, hi], [float(bins["expected"].mean())] * 2, color="#444444", linestyle="--", linewidth=1, zorder=3)
    handles = [Rectangle((0, 0), 1, 1, color=PALETTE[0]), Rectangle((0, 0), 1, 1, color=PALETTE[3]),
               Rectangle((0, 0), 1, 1, color="#888888", alpha=0.2),
               Line2D([], [], color="#444444", linestyle="--", linewidth=1)]
    labels = ["observed share of cells", "outside the interval", "interval for a uniform PIT", "uniform"]
    ax.set_xlim(lo, hi)
    ax.set_xlabel("PIT of the observed cell score under the posterior predictive", fontsize=9)
    ax.set_ylabel("share of cells", fontsize=9)
    ax.set_title("posterior predictive check: PIT histogram", fontsize=11)
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)
    return fig


# ------------------------------------------------------------ comparing submissions


AGGREGATE_TITLES = {"median": "median", "iqm": "IQM", "mean": "mean"}


def aggregate_interval_chart(table: pd.DataFrame, teams: Sequence[str], metrics: Sequence[str] = ("median", "iqm", "mean"),
                             level: float = 0.95, styles: Mapping[str, TeamStyle] | None = None):
    """Interval plot of aggregate scores (as in rliable): one panel per
    metric, one row per team (``teams`` in the order given, best first on
    top), the point estimate as a tick and the bootstrap interval as a bar.
    ``table`` is ``compare_teams(...).table`` (team, metric, value, ci_low,
    ci_high)."""
    keyed = table.set_index(["team", "metric"])
    styles = styles_for(teams, styles)
    n = len(teams)
    fig, axes = subplots(1, len(metrics), figsize=(max(3.8, 2.0 * len(metrics) + 1.0), 0.9 + 0.34 * n), sharey=True,
                         squeeze=False)
    y = np.arange(n)[::-1].astype(float)
    for ax, metric in zip(axes[0], metrics):
        for row, team in zip(y, teams):
            value, low, high = keyed.loc[(team, metric), ["value", "ci_low", "ci_high"]].to_numpy(dtype=float)
            colour = styles[str(team)].colour
            ax.barh(row, max(high - low, 1e-3), left=low, height=0.6, color=colour, alpha=0.55)
            ax.plot([value, value], [row - 0.32, row + 0.32], color="#222222", linewidth=1.6)
        ax.set_title(AGGREGATE_TITLES.get(metric, metric), fontsize=10)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.tick_params(axis="x", labelsize=7.5)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels([mpl_text(t) for t in teams], fontsize=8.5)
    axes[0, 0].set_ylim(-0.6, n - 0.4)
    if len(metrics) > 1:
        fig.supxlabel(f"normalised score (bar: {level:.0%} stratified bootstrap interval, tick: estimate)",
                      fontsize=8.5)
    else:
        axes[0, 0].set_xlabel(f"normalised score (bar: {level:.0%} bootstrap interval)", fontsize=8.5)
    fig.tight_layout()
    return fig


def poi_matrix_chart(table: pd.DataFrame, teams: Sequence[str]):
    """Probability-of-improvement matrix: cell (row A, column B) is
    P(a run of A beats a run of B on a random scenario) with its bootstrap
    interval written in it; colour diverges at 0.5 (no difference). ``table``
    is ``compare_teams(...).table``; ``teams`` orders rows and columns."""
    keyed = table.set_index(["team", "metric"])
    n = len(teams)
    values = np.full((n, n), np.nan)
    for i, a in enumerate(teams):
        for j, b in enumerate(teams):
            if i != j:
                values[i, j] = float(keyed.loc[(a, f"p_improve:{b}"), "value"])
    side = max(3.0, 1.2 + 0.8 * n)
    fig, ax = subplots(figsize=(side + 1.0, side))
    ax.set_facecolor("#eeeeee")
    image = ax.imshow(values, cmap="PuOr_r", vmin=0.0, vmax=1.0)
    for i, a in enumerate(teams):
        for j, b in enumerate(teams):
            if i == j:
                continue
            value, low, high = keyed.loc[(a, f"p_improve:{b}"), ["value", "ci_low", "ci_high"]].to_numpy(dtype=float)
            dark = abs(value - 0.5) > 0.3
            ax.text(j, i, f"{value:.2f}\n[{low:.2f}, {high:.2f}]", ha="center", va="center", fontsize=7.5,
                    color="white" if dark else "black")
    names = [axis_label(t, 12) for t in teams]
    ax.set_xticks(np.arange(n))
    ax.set_xticklabels(names, fontsize=8, rotation=30, ha="right")
    ax.set_yticks(np.arange(n))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("column team", fontsize=8.5)
    ax.set_ylabel("row team", fontsize=8.5)
    ax.set_title("P(a run of the row team beats one of the column team)", fontsize=9.5)
    fig.colorbar(image, ax=ax, fraction=0.045, pad=0.03).ax.tick_params(labelsize=7)
    return fig
