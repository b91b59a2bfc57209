"""The scenario catalog: every Melting Pot scenario with its demands.

The catalog ships as ``tagging/data/scenarios.json`` so the base install (no
meltingpot) can use it. ``build_catalog_records`` regenerates it from the
installed meltingpot; ``capprof catalog --regenerate`` writes it and
``capprof catalog --check`` compares it with meltingpot.

Catalog schema (one row per scenario, see docs/schema.md):

=================  ==========  ==================================================
column             type        meaning
=================  ==========  ==================================================
scenario           str         meltingpot scenario name, e.g. ``clean_up_7``
substrate          str         substrate name, e.g. ``clean_up``
n_players          int         number of player slots
n_focal            int         slots filled from the focal population (m)
n_background       int         slots filled with background bots (n)
mode               str         ``resident`` (m > n), ``visitor`` (m < n) or ``none``
roles              list[str]   role of every slot, in slot order
is_focal           list[bool]  whether each slot is focal, in slot order
bots               list[str]   every background bot the scenario may sample
tags               list[str]   behavioural tags (spelling corrected, see below)
raw_tags           list[str]   tags exactly as meltingpot spells them
description        str         meltingpot's description
needs_assets       bool        whether a background bot is a saved model
meltingpot_version str         meltingpot version the row was read from
=================  ==========  ==================================================
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path

import pandas as pd

from capprof.errors import CapprofError, did_you_mean
from capprof.tagging.constants import MODES

CATALOG_FILE = "scenarios.json"

# meltingpot 2.4.1 spells one tag "parter_choice" (prisoners_dilemma_in_the_matrix
# scenarios). It names the same demand as "partner_choice", which other
# scenarios use, so the catalog reports the corrected spelling in `tags` and
# keeps meltingpot's own in `raw_tags`. Custom demand files may use either.
TAG_CORRECTIONS = {"parter_choice": "partner_choice"}

# meltingpot's name for the bot that always takes the no-op action; it is the
# only bot that needs no saved model from DeepMind's assets.
NOOP_BOT = "noop_bot"

# The Melting Pot Contest 2023 (contest report, section 2.5 and table 3): four
# substrates; the first scenarios of each were public during development, the
# rest formed the held-out evaluation set.
CONTEST_SUBSTRATES = (
    "allelopathic_harvest__open",
    "clean_up",
    "prisoners_dilemma_in_the_matrix__arena",
    "territory__rooms",
)
CONTEST_DEVELOPMENT_SCENARIOS = frozenset(
    [f"allelopathic_harvest__open_{i}" for i in range(3)]
    + [f"clean_up_{i}" for i in range(9)]
    + [f"prisoners_dilemma_in_the_matrix__arena_{i}" for i in range(6)]
    + [f"territory__rooms_{i}" for i in range(4)]
)


def mode_from_counts(n_focal: int, n_background: int) -> str:
    """Resident when focal players outnumber background ones (m > n), visitor
    when they are outnumbered (m < n), none when equal (contest report, 2.3)."""
    if n_focal > n_background:
        return "resident"
    if n_focal < n_background:
        return "visitor"
    return "none"


def checked_tag(name: str, known, hint: str) -> str:
    """The corrected spelling of a known tag; CapprofError with a suggestion
    and ``hint`` otherwise."""
    tag = correct_tag(name)
    if tag not in known:
        raise CapprofError(f'unknown tag "{tag}"{did_you_mean(tag, known)}; {hint}')
    return tag


def natural_key(name: str) -> tuple:
    """Sort key that puts clean_up_2 before clean_up_10."""
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def correct_tag(tag: str) -> str:
    return TAG_CORRECTIONS.get(tag, tag)


def build_catalog_records() -> list[dict]:
    """Read every scenario from the installed meltingpot (needs ``[runners]``)."""
    from importlib.metadata import version

    # one clear line when meltingpot is missing, and TensorFlow's start-up
    # chatter kept off the terminal
    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    from meltingpot.configs import scenarios as scenario_configs

    mp_version = version("dm-meltingpot")
    records = []
    for name in sorted(scenario_configs.SCENARIO_CONFIGS, key=natural_key):
        config = scenario_configs.SCENARIO_CONFIGS[name]
        is_focal = [bool(f) for f in config.is_focal]
        n_focal = sum(is_focal)
        n_background = len(is_focal) - n_focal
        background_roles = {r for r, f in zip(config.roles, is_focal) if not f}
        bots = sorted({b for role in background_roles for b in config.bots_by_role[role]})
        raw_tags = sorted(config.tags)
        records.append(
            dict(
                scenario=name,
                substrate=config.substrate,
                n_players=len(is_focal),
                n_focal=n_focal,
                n_background=n_background,
                mode=mode_from_counts(n_focal, n_background),
                roles=list(config.roles),
                is_focal=is_focal,
                bots=bots,
                tags=sorted({correct_tag(t) for t in raw_tags}),
                raw_tags=raw_tags,
                description=" ".join(config.description.split()),
                needs_assets=any(b != NOOP_BOT for b in bots),
                meltingpot_version=mp_version,
            )
        )
    return records


def write_catalog(records: list[dict], path: Path) -> None:
    from capprof.io import atomic_write_text

    atomic_write_text(path, json.dumps(records, indent=1, sort_keys=False) + "\n")


def shipped_catalog_path() -> Path:
    return Path(str(resources.files("capprof.tagging") / "data" / CATALOG_FILE))


@functools.lru_cache(maxsize=1)
def _load_shipped() -> pd.DataFrame:
    records = json.loads(shipped_catalog_path().read_text())
    return pd.DataFrame.from_records(records).set_index("scenario", drop=False)


def load_catalog() -> pd.DataFrame:
    """The shipped catalog as a DataFrame indexed by scenario (a copy)."""
    return _load_shipped().copy()


def all_tags(catalog: pd.DataFrame) -> list[str]:
    """Every behavioural tag used in the catalog, sorted."""
    return sorted({t for tags in catalog["tags"] for t in tags})


def contest_heldout_scenarios(catalog: pd.DataFrame) -> list[str]:
    """Scenarios of the four contest substrates that were not public during the
    contest's development phase: the held-out set (50 in meltingpot 2.4.1; the
    contest report counts 51, one of which meltingpot no longer ships)."""
    rows = catalog[catalog["substrate"].isin(CONTEST_SUBSTRATES)]
    return sorted(s for s in rows["scenario"] if s not in CONTEST_DEVELOPMENT_SCENARIOS)


def filter_catalog(
    catalog: pd.DataFrame, substrates=None, tags=None
) -> pd.DataFrame:
    """Rows whose substrate is one of ``substrates`` and that carry every tag in
    ``tags``; unknown names raise CapprofError with a suggestion."""
    if substrates:
        known = set(catalog["substrate"])
        for s in substrates:
            if s not in known:
                raise CapprofError(
                    f'unknown substrate "{s}"{did_you_mean(s, known)}; '
                    "`capprof tags --format csv` lists the known ones"
                )
        catalog = catalog[catalog["substrate"].isin(substrates)]
    if tags:
        known = set(all_tags(load_catalog())) | set(MODES)
        wanted = {checked_tag(t, known, "see docs/tags.md for the list") for t in tags}
        catalog = catalog[
            [wanted <= (set(tg) | {m}) for tg, m in zip(catalog["tags"], catalog["mode"])]
        ]
    return catalog
