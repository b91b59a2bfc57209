"""The study report: one self-contained HTML page of a study's tables
(``capprof.study.StudyTables``): per-capita return and the share of fully
depleted episodes against each swept value (log axis, one line per
population, 95% intervals), Gini over time per zap cooldown, and the focal x
background matrix as a heatmap. Charts are PNGs embedded as data URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from capprof.reports.markup import esc, html_table

SWEEP_LABELS = {"regrowth": "apple regrowth multiplier (log scale)",
                "zap_cooldown": "zap cooldown, steps (log scale)"}


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _styles(teams):
    from capprof.reports.charts import team_styles

    return team_styles(teams)


def sweep_chart(sweep: pd.DataFrame, key: str, value: str, low: str, high: str, ylabel: str):
    """One line per team over the swept values (log x), its interval shaded."""
    from capprof.reports.charts import subplots

    rows = sweep[sweep["sweep"] == key]
    styles = _styles(rows["team"])
    fig, ax = subplots(figsize=(6.4, 3.8))
    for team, group in rows.groupby("team"):
        group = group.sort_values("value")
        style = styles[team]
        ax.plot(group["value"], group[value], color=style.colour, linestyle=style.linestyle,
                marker=style.marker, label=team)
        ax.fill_between(group["value"], group[low], group[high], color=style.colour, alpha=0.15, linewidth=0)
    ax.set_xscale("log")
    ax.set_xlabel(SWEEP_LABELS.get(key, key))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def gini_chart(gini: pd.DataFrame, key: str = "zap_cooldown", columns: int = 3):
    """Small multiples: one panel per value of ``key``, Gini over steps, a line
    per team with its interval."""
    from capprof.reports.charts import subplots

    values = sorted(gini[key].unique())
    styles = _styles(gini["team"])
    rows = int(np.ceil(len(values) / columns))
    fig, axes = subplots(rows, columns, figsize=(3.4 * columns, 2.6 * rows), sharex=True, sharey=True,
                         squeeze=False)
    for ax, value in zip(axes.flat, values):
        for team, group in gini[gini[key] == value].groupby("team"):
            style = styles[team]
            ax.plot(group["step"], group["gini"], color=style.colour, linestyle=style.linestyle, label=team)
            ax.fill_between(group["step"], group["gini_low"].clip(lower=0), group["gini_high"].clip(upper=1),
                            color=style.colour, alpha=0.12, linewidth=0)
        ax.set_title(f"{key.replace('_', ' ')} {value:g}", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(values):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    for ax in axes[:, 0]:
        ax.set_ylabel("Gini of returns")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def matrix_chart(matrix: pd.DataFrame):
    """Heatmap of the focal per-capita return: focal team (rows) x background
    team (columns), each cell annotated with its mean and 95% interval."""
    from capprof.reports.charts import subplots

    teams = sorted(set(matrix["focal"]) | set(matrix["background"]))
    grid = matrix.pivot(index="focal", columns="background", values="focal_return").reindex(index=teams,
                                                                                            columns=teams)
    fig, ax = subplots(figsize=(1.2 * len(teams) + 2, 0.9 * len(teams) + 1.5))
    image = ax.imshow(grid.to_numpy(float), cmap="viridis")
    ax.set_xticks(range(len(teams)), teams, rotation=30, ha="right")
    ax.set_yticks(range(len(teams)), teams)
    ax.set_xlabel("background population")
    ax.set_ylabel("focal population")
    for row in matrix.itertuples(index=False):
        i, j = teams.index(row.focal), teams.index(row.background)
        interval = f"\n[{row.focal_low:.1f}, {row.focal_high:.1f}]" if np.isfinite(row.focal_low) else ""
        ax.text(j, i, f"{row.focal_return:.1f}{interval}", ha="center", va="center", fontsize=7, color="white")
    fig.colorbar(image, ax=ax, label="focal per-capita return")
    return fig


def abilities_chart(abilities: pd.DataFrame):
    """Each ability a panel; in it every team's posterior mean with its HDI."""
    from capprof.reports.charts import subplots

    names = list(dict.fromkeys(abilities["ability"]))
    teams = sorted(abilities["team"].unique())
    styles = _styles(teams)
    fig, axes = subplots(1, len(names), figsize=(2.6 * len(names) + 1, 0.35 * len(teams) + 1.4),
                         sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        part = abilities[abilities["ability"] == name].set_index("team").reindex(teams)
        for y, team in enumerate(teams):
            row = part.loc[team]
            ax.plot([row.hdi_low, row.hdi_high], [y, y], color=styles[team].colour, linewidth=2)
            ax.plot(row["mean"], y, marker="o", color=styles[team].colour)
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].set_yticks(range(len(teams)), teams)
    fig.tight_layout()
    return fig


def profiles_section(profile) -> str:
    """The study's capability profiles: a chart and the table, with the fit's diagnostics."""
    abilities = profile.abilities
    d = profile.layout.diagnostics_
    level = float(abilities["hdi_prob"].iloc[0]) if "hdi_prob" in abilities else 0.9
    lines = (f"Joint measurement layout on the study's own episodes (minmax per scenario): max R-hat "
             f"{d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, {d['divergences']} divergence(s). "
             f"Posterior mean and {level:.0%} HDI per ability.")
    table = abilities[["team", "ability", "mean", "hdi_low", "hdi_high"]]
    return (f"<h2>Capability profiles</h2><p>{esc(lines)}</p>"
            + _figure(_png(abilities_chart(abilities)), "Ability per population (mean and HDI)")
            + f"<details><summary>abilities ({len(table)} rows)</summary>{_table(table)}</details>")


_CSS = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1rem;color:#222}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,520px),1fr));gap:1rem}
figure{margin:0}img{max-width:100%;height:auto}table{border-collapse:collapse;font-size:.85rem}
td,th{border:1px solid #ccc;padding:.2rem .4rem;text-align:right}details{margin:.5rem 0}
.table-wrap{overflow-x:auto}
"""


def _figure(src: str, caption: str) -> str:
    return f'<figure><img src="{src}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def _table(frame: pd.DataFrame) -> str:
    formats = {c: ".3g" for c in frame.columns if pd.api.types.is_float_dtype(frame[c])}
    return f'<div class="table-wrap">{html_table(frame, formats=formats)}</div>'


def study_report(title: str, description: str, tables, facts: Mapping[str, str] | None = None,
                 profiles: Sequence[str] = ()) -> str:
    """The HTML page of ``tables`` (a ``StudyTables``); ``facts`` are lines
    shown under the title (episodes, populations, how long each trained)."""
    sweep, gini, matrix = tables.sweep, tables.gini, tables.matrix
    parts = [f"<h1>{esc(title)}</h1><p>{esc(description)}</p>"]
    if facts:
        parts.append("<ul>" + "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in facts.items()) + "</ul>")
    for key in sweep["sweep"].unique():
        parts.append(f"<h2>{esc(key.replace('_', ' ').capitalize())} sweep</h2><div class=grid>")
        parts.append(_figure(_png(sweep_chart(sweep, key, "per_capita_return", "per_capita_low", "per_capita_high",
                                              "focal per-capita return")),
                             f"Per-capita return against {key} (mean, 95% t interval)"))
        parts.append(_figure(_png(sweep_chart(sweep, key, "depleted_share", "depleted_low", "depleted_high",
                                              "share of fully depleted episodes")),
                             f"Fully depleted episodes against {key} (no collective reward for 50 steps; "
                             "95% Wilson interval)"))
        parts.append("</div>")
    if not gini.empty:
        parts.append("<h2>Gini over time per zap cooldown</h2>")
        parts.append(_figure(_png(gini_chart(gini)), "Gini of all players' cumulative returns (mean, 95% interval)"))
    if not matrix.empty:
        parts.append("<h2>Focal x background</h2>")
        parts.append(_figure(_png(matrix_chart(matrix)), "Focal per-capita return, each focal population beside "
                                                         "each other as background"))
    parts.extend(profiles)
    parts.append("<h2>Tables</h2>")
    for name, frame in (("sweep", sweep), ("matrix", matrix), ("gini", gini)):
        parts.append(f"<details><summary>{name} ({len(frame)} rows)</summary>{_table(frame)}</details>")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width,initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
