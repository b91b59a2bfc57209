"""Teams compared on one chart: the profile charts with teams overlaid."""

from __future__ import annotations

from capprof.reports import tables
from capprof.reports.markup import esc
from capprof.reports.sections.base import Body, Section

OVERLAY_DEFAULT = 4  # teams overlaid when --teams is not given


def build(inputs, charts) -> Body:
    from capprof.reports.charts import GROUP_TITLES, ability_chart

    frame = inputs.profiles()
    chosen = inputs.teams or sorted(frame["team"].unique())[:OVERLAY_DEFAULT]
    groups = tables.ability_groups(frame["ability"])
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
    images = []
    for group, abilities in groups.items():
        abilities = [a for a in abilities if a not in unobserved]
        if not abilities:
            continue
        fig = ability_chart(per_team, chosen, abilities, f"{GROUP_TITLES[group]}", styles=charts.styles())
        images.append(charts.image(fig, f"overlay-{group}", f"overlay of {', '.join(chosen)}: {GROUP_TITLES[group]}"))
    return Body(intro, (f'<div class="charts">{"".join(images)}</div>',))


SECTION = Section("overlay", "Teams compared on one chart", build, order=40)
