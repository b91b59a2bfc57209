"""Every team at a glance: small-multiple radars, one per team and radar
group, on the same axes and the same radial scale, in a responsive grid;
beside them the overlay charts (several teams on one chart). Groups that are
not radars (the two mode abilities, or more than 24 substrates) are overlaid
interval charts; each team's own interval charts are in a collapsed block."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capprof.reports import tables
from capprof.reports.markup import esc
from capprof.reports.sections.base import Body, Section

OVERLAY_DEFAULT = 4  # teams overlaid when --teams is not given


def _masked(own: pd.DataFrame, abilities: list[str]) -> pd.DataFrame:
    """A team's abilities on the shared axes: an ability it has no cell for
    (the prior alone) or lacks is NaN, a gap in its trace."""
    frame = own.reindex(abilities)[["mean", "hdi_low", "hdi_high"]].astype(float)
    frame.loc[[a for a in tables.unobserved_abilities(own) if a in frame.index]] = np.nan
    return frame


def _multiples(frame, groups, charts, teams) -> tuple[list[str], list[str]]:
    """The small-multiple grids (one per radar group) and the per-team
    interval charts of the other groups."""
    from capprof.reports.charts import GROUP_TITLES, ability_chart, radar_chart, radar_limits, use_radar

    own = {t: frame[frame["team"] == t].drop_duplicates("ability").set_index("ability") for t in teams}
    unobserved = {t: tables.unobserved_abilities(own[t]) for t in teams}
    grids, others = [], []
    for group, abilities in groups.items():
        # an ability no team has a cell for has no place on any team's axes
        measured = {a: sum(a in own[t].index and a not in unobserved[t] for t in teams) for a in abilities}
        # abilities every team is measured on first, then the fewer-measured:
        # a team's measured abilities stay neighbours, one unbroken trace
        shared = sorted((a for a in abilities if measured[a]), key=lambda a: (-measured[a], a))
        if not shared:
            continue
        if use_radar(len(shared)):
            masked = {t: _masked(own[t], shared) for t in teams}
            drawn = [t for t in teams if masked[t]["mean"].notna().any()]
            limits = radar_limits([masked[t] for t in drawn])
            cards = []
            for team in drawn:
                fig = radar_chart([masked[team]], [team], shared, str(team), styles=charts.styles(), limits=limits,
                                  compact=True)
                missing = [a for a in shared if not np.isfinite(masked[team].loc[a, "mean"])]
                note = (f'<figcaption class="absent">No cell of {esc(team)} makes these demands (prior only, '
                        f'not charted): {esc(", ".join(missing))}.</figcaption>') if missing else ""
                cards.append(f"<figure>{charts.image(fig, f'profile-{group}', f'{team} abilities: {GROUP_TITLES[group]}')}"
                             f"{note}</figure>")
            grids.append(f"<h3>{esc(GROUP_TITLES[group])} ({len(shared)})</h3>"
                         f'<div class="radars">{"".join(cards)}</div>')
        else:
            for team in teams:
                present = [a for a in shared if a in own[team].index and a not in unobserved[team]]
                if present:
                    fig = ability_chart([own[team]], [team], present, f"{team}: {GROUP_TITLES[group]}",
                                        styles=charts.styles())
                    others.append(charts.image(fig, f"profile-{group}", f"{team} abilities: {GROUP_TITLES[group]}"))
    return grids, others


def _overlay(frame, groups, charts, inputs) -> tuple[str, str]:
    """The overlay radars (beside the grid) and overlay interval charts
    (below it)."""
    from capprof.reports.charts import GROUP_TITLES, ability_chart, use_radar

    chosen = inputs.teams or sorted(frame["team"].unique())[:OVERLAY_DEFAULT]
    intro = (
        f"Teams overlaid: {esc(', '.join(chosen))}"
        + ("" if inputs.teams else f" (the first {OVERLAY_DEFAULT} by name; choose with --teams)") + "."
    )
    per_team = [frame[frame["team"] == t].drop_duplicates("ability").set_index("ability") for t in chosen]
    # Abilities some overlaid team has no cell for would set a prior beside
    # measured abilities; they are left out and named.
    unobserved = sorted({a for own in per_team for a in tables.unobserved_abilities(own)})
    if unobserved:
        intro += f" Left out, some of these teams have no cell making the demand: {esc(', '.join(unobserved))}."
    radars, intervals = [], []
    for group, abilities in groups.items():
        abilities = [a for a in abilities if a not in unobserved]
        if not abilities:
            continue
        fig = ability_chart(per_team, chosen, abilities, f"{GROUP_TITLES[group]}", styles=charts.styles())
        image = charts.image(fig, f"overlay-{group}", f"overlay of {', '.join(chosen)}: {GROUP_TITLES[group]}")
        (radars if use_radar(len(abilities)) else intervals).append(image)
    # radars beside the small multiples; interval charts (wide, with row
    # labels) below them, where they keep a readable size
    aside = f'<aside id="overlay"><h3>Teams compared on one chart</h3><p>{intro}</p>{"".join(radars)}</aside>'
    below = f'<div class="charts">{"".join(intervals)}</div>' if intervals else ""
    return aside, below


def build(inputs, charts) -> Body:
    from capprof.reports.charts import GROUP_TITLES

    frame = inputs.profiles()
    groups = tables.ability_groups(frame["ability"])
    teams = sorted(frame["team"].unique())
    level = tables.hdi_level(frame)
    level = "" if level is None else f"{level:.0%} "
    intro = (
        f"Posterior mean ability per demand (line) with its {level}highest-density interval (band), one radar per "
        "team and demand group, every team on the same axes and the same scale: "
        + ", ".join(f"{esc(GROUP_TITLES[g])} ({len(a)})" for g, a in groups.items())
        + ". The radius starts below the lowest HDI bound (abilities are on a latent scale that can be negative): "
        "read values from the ring labels. Groups of fewer than 3 or more than 24 abilities are interval charts."
    )
    grids, others = _multiples(frame, groups, charts, teams)
    grid = "".join(grids) or '<p class="absent">No demand group has 3 to 24 measured abilities to draw as radars.</p>'
    aside, below = _overlay(frame, groups, charts, inputs)
    parts = [f'<div class="glance"><div class="multiples">{grid}{below}</div>{aside}</div>']
    if others:
        parts.append(f"<details><summary>Each team's interval charts ({len(others)})</summary>"
                     f'<div class="charts">{"".join(others)}</div></details>')
    return Body(intro, tuple(parts))


SECTION = Section("profiles", "Every team at a glance", build, order=10)
