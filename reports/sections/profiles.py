"""Capability profiles per team: one chart per demand group."""

from __future__ import annotations

from capprof.reports import tables
from capprof.reports.markup import esc
from capprof.reports.sections.base import Body, Section


def build(inputs, charts) -> Body:
    from capprof.reports.charts import GROUP_TITLES, ability_chart

    frame = inputs.profiles()
    groups = tables.ability_groups(frame["ability"])
    level = tables.hdi_level(frame)
    level = "" if level is None else f"{level:.0%} "
    intro = (
        f"Posterior mean ability per demand (line or dot) with its {level}highest-density interval (band or bar), "
        "one chart per demand group: " + ", ".join(f"{esc(GROUP_TITLES[g])} ({len(a)})" for g, a in groups.items())
        + ". Groups of 3 to 24 abilities are radars; larger or smaller groups are interval charts."
    )
    parts = []
    for team, own in frame.groupby("team", sort=True):
        own = own.drop_duplicates("ability").set_index("ability")
        # An ability no cell of the team informs is the prior alone (the team
        # did not play a scenario making that demand): listed, not charted.
        unobserved = tables.unobserved_abilities(own)
        images = []
        for group, abilities in groups.items():
            present = [a for a in abilities if a in own.index and a not in unobserved]
            if present:
                fig = ability_chart([own], [team], present, f"{team}: {GROUP_TITLES[group]}", styles=charts.styles())
                images.append(charts.image(fig, f"profile-{group}", f"{team} abilities: {GROUP_TITLES[group]}"))
        missing = (f'<p class="absent">Not charted, no cell of {esc(team)} makes these demands (the posterior is '
                   f'the prior): {esc(", ".join(unobserved))}.</p>') if unobserved else ""
        parts.append(f'<h3>{esc(team)}</h3>{missing}<div class="charts">{"".join(images)}</div>')
    return Body(intro, tuple(parts))


SECTION = Section("profiles", "Capability profiles per team", build, order=30)
