"""Scenarios: a substrate, its player slots, and who fills the background.

A :class:`Scenario` is one frozen record. Three suites exist:

* ``official`` - meltingpot's own scenarios, read from its configs; the
  background is DeepMind's bots (``bot:<name>`` members), which need the saved
  model assets unless they are the no-op bot.
* ``offline`` - capprof's scenarios on five substrates whose background is a
  capprof population (built-in scripted behaviours), so they run with no
  downloaded assets. Each substrate has a resident (focal majority) and a
  visitor (focal minority) scenario per background behaviour.
* ``variants`` - substrate variants declared as overrides of meltingpot's
  substrate settings (commons_harvest__open regrowth sweep, disabled zapping),
  played by focal players only, as in the safety study they come from.

``scenario_demands()`` gives the offline and variant scenarios' demands in the
custom-demands shape (index scenario, column ``substrate``, one float column
per demand named after the catalog's tags) so profiling can use them.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from capprof.errors import CapprofError, did_you_mean
from capprof.runners.constants import BOT_PREFIX, CUSTOM_SUITES, OFFICIAL, OFFLINE, SUITES, VARIANTS
from capprof.tagging.catalog import NOOP_BOT, load_catalog, mode_from_counts, natural_key
from capprof.tagging.constants import MODE_DEMANDS

RESIDENT, VISITOR = MODE_DEMANDS

__all__ = ["BOT_PREFIX", "SUITES", "ComponentKwarg", "ConfigValue", "DisableAction", "MeanReward", "Scenario",
           "VisibleObjectReward",
           "default_roles", "get_scenario", "offline_suite", "scenario_demands", "scenarios_table", "suite_names",
           "variant_suite", "write_demands_yaml"]


# ------------------------------------------------------------ substrate overrides


@dataclass(frozen=True)
class ComponentKwarg:
    """Set (``value``) or multiply (``scale``) one keyword argument of every
    lab2d component called ``component`` in the substrate's settings (prefabs,
    game objects and scene alike)."""

    component: str
    kwarg: str
    value: Any = None
    scale: float | None = None

    def describe(self) -> str:
        change = f"x{self.scale:g}" if self.scale is not None else f"= {self.value!r}"
        return f"{self.component}.{self.kwarg} {change}"


@dataclass(frozen=True)
class DisableAction:
    """Turn every action that sets ``key`` (e.g. ``fireZap``) into a no-op for
    all players. The action space keeps its size, so policies run unchanged."""

    key: str

    def describe(self) -> str:
        return f"{self.key} disabled"


@dataclass(frozen=True)
class ConfigValue:
    """Set a key of meltingpot's substrate config (e.g. ``episode_timesteps``)."""

    key: str
    value: Any

    def describe(self) -> str:
        return f"config.{self.key} = {self.value!r}"


@dataclass(frozen=True)
class VisibleObjectReward:
    """Add ``per_object`` to a player's reward, every step, for each cell of its
    view showing an object of prefab ``prefab`` in its first sprite (the safety
    study's "farmer" shaping: a reward for apples in view). The cells are found
    by the sprite's body colour at a few pixels of each cell, whichever way the
    view is turned (``runners.episode.substrate.SpriteProbe``)."""

    prefab: str
    per_object: float

    def describe(self) -> str:
        return f"+{self.per_object:g} reward per {self.prefab} in view per step"


@dataclass(frozen=True)
class MeanReward:
    """Every player receives the mean reward of all players (meltingpot 2.0's
    prosocial baselines), after any other reward shaping."""

    def describe(self) -> str:
        return "every player rewarded with the mean reward of all"


SubstrateOverride = ComponentKwarg | DisableAction | ConfigValue | VisibleObjectReward | MeanReward


# ------------------------------------------------------------ the record


@dataclass(frozen=True)
class Scenario:
    """One evaluation scenario.

    ``background`` maps each background role to the members it samples from:
    ``bot:<name>`` for a meltingpot bot, otherwise a capprof population spec
    (see ``capprof.runners.populations.populations``).
    """

    name: str
    substrate: str
    roles: tuple[str, ...]
    is_focal: tuple[bool, ...]
    background: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tags: tuple[str, ...] = ()
    overrides: tuple[SubstrateOverride, ...] = ()
    description: str = ""
    suite: str = OFFICIAL

    def __post_init__(self):
        if len(self.roles) != len(self.is_focal):
            raise ValueError(f"{self.name}: roles and is_focal differ in length")
        if not any(self.is_focal):
            raise ValueError(f"{self.name}: a scenario needs at least one focal slot")

    @property
    def n_players(self) -> int:
        return len(self.roles)

    @property
    def n_focal(self) -> int:
        return sum(self.is_focal)

    @property
    def n_background(self) -> int:
        return self.n_players - self.n_focal

    @property
    def mode(self) -> str:
        """resident / visitor as in the catalog; ``none`` also when nobody is
        in the background (focal players only: no one visits anyone)."""
        if self.n_background == 0:
            return "none"
        return mode_from_counts(self.n_focal, self.n_background)

    @property
    def background_roles(self) -> tuple[str, ...]:
        return tuple(r for r, f in zip(self.roles, self.is_focal) if not f)

    def background_members(self, role: str) -> tuple[str, ...]:
        return dict(self.background)[role]

    @property
    def bots(self) -> tuple[str, ...]:
        """meltingpot bots the background may sample, without the prefix."""
        return tuple(sorted({m[len(BOT_PREFIX):] for _, ms in self.background for m in ms
                             if m.startswith(BOT_PREFIX)}))

    @property
    def needs_assets(self) -> bool:
        return any(b != NOOP_BOT for b in self.bots)


# ------------------------------------------------------------ official suite


def official_scenario(name: str) -> Scenario:
    """A meltingpot scenario as a capprof record (reads meltingpot's config)."""
    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    from meltingpot.configs import scenarios as scenario_configs

    config = scenario_configs.SCENARIO_CONFIGS[name]
    catalog = load_catalog()
    background_roles = sorted({r for r, f in zip(config.roles, config.is_focal) if not f})
    return Scenario(
        name=name,
        substrate=config.substrate,
        roles=tuple(config.roles),
        is_focal=tuple(bool(f) for f in config.is_focal),
        background=tuple(
            (role, tuple(BOT_PREFIX + b for b in sorted(config.bots_by_role[role])))
            for role in background_roles
        ),
        tags=tuple(t for t in catalog.loc[name, "tags"] if t not in MODE_DEMANDS),
        description=" ".join(config.description.split()),
        suite=OFFICIAL,
    )


# ------------------------------------------------------------ offline suite

# Per substrate: background behaviours and the demands each places on focal
# players as a resident group (focal majority) and as visitors (focal
# minority). Tags use the catalog's vocabulary and follow the analogous
# official scenarios (e.g. clean_up_0: visiting altruists is a
# chance_to_benefit_oneself...; territory__rooms_0/1: aggressors demand defense).
SUITES_FILE = Path(__file__).parent / "data" / "suites.yaml"  # the offline and variants suites, as data


@functools.lru_cache(maxsize=1)
def suites_data() -> dict:
    """runners/scenarios/data/suites.yaml: ``offline`` (substrate -> background
    behaviour -> mode -> demands), ``backgrounds`` (behaviour -> how a
    description names it) and ``variants`` (suite name -> declarative spelling)."""
    import yaml

    return yaml.safe_load(SUITES_FILE.read_text())


@functools.lru_cache(maxsize=None)
def default_roles(substrate: str) -> tuple[str, ...]:
    """Default player roles of a substrate, from the shipped catalog when a
    scenario of it exists (fast), else from meltingpot."""
    catalog = load_catalog()
    rows = catalog[catalog["substrate"] == substrate]
    full = rows[rows["n_players"] == rows["n_players"].max()] if len(rows) else rows
    if len(full):
        return tuple(full.iloc[0]["roles"])
    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    from meltingpot import substrate as mp_substrate

    return tuple(mp_substrate.get_config(substrate).default_player_roles)


def _mixed(substrate: str, behaviour: str, mode: str, tags: tuple[str, ...]) -> Scenario:
    roles = default_roles(substrate)
    n = len(roles)
    minority = max(1, n // 4)
    n_focal = n - minority if mode == RESIDENT else minority
    is_focal = tuple(i < n_focal for i in range(n))
    background_roles = sorted({r for r, f in zip(roles, is_focal) if not f})
    who = "focals are resident, visited by" if mode == RESIDENT else "focals visit a population of"
    return Scenario(
        name=f"{substrate}__{mode}_{behaviour}",
        substrate=substrate,
        roles=roles,
        is_focal=is_focal,
        background=tuple((role, (behaviour,)) for role in background_roles),
        tags=tuple(sorted(tags)),
        description=f"{who} {n - n_focal} scripted bots {suites_data()['backgrounds'][behaviour]}",
        suite=OFFLINE,
    )


@functools.lru_cache(maxsize=1)
def offline_suite() -> tuple[Scenario, ...]:
    scenarios = []
    for substrate, behaviours in suites_data()["offline"].items():
        for behaviour, by_mode in behaviours.items():
            for mode in MODE_DEMANDS:
                scenarios.append(_mixed(substrate, behaviour, mode, tuple(by_mode[mode])))
    return tuple(scenarios)


# ------------------------------------------------------------ substrate variants

@functools.lru_cache(maxsize=1)
def _suite_variants() -> dict[str, Scenario]:
    """Canonical declarative name -> the ``variants`` suite's scenario of it."""
    found = {}
    for name, spelling in suites_data()["variants"].items():
        declared = parse_variant(spelling, as_suite=False)
        found[declared.name] = dataclasses.replace(declared, name=name)
    return found


def variant_suite() -> tuple[Scenario, ...]:
    """The ``variants`` suite: suites.yaml's declarative variants under their
    suite names (earlier runs join under those names)."""
    return tuple(_suite_variants().values())


# ------------------------------------------------------------ declarative variants

# ``SUBSTRATE:key=value[,key=value...]``: a substrate with overrides, every slot
# focal. Key -> (what it means, the component and kwarg it changes or None).
VARIANT_KEYS = {
    "regrowth": "multiplier of the apple regrowth probabilities (a number > 0; capped at probability 1)",
    "zap_cooldown": "steps between a player's zaps (a whole number >= 1)",
    "no_zap": "zapping disabled for everyone (no value)",
    "farmer": "extra reward per apple in the player's view per step (a number > 0, e.g. 0.01)",
    "prosocial": "every player rewarded with the mean reward of all players (no value)",
    "background": "who fills the background slots: a built-in (random, harvester, ...) or shipped:NAME",
    "focal": "how many slots are focal when a background is given (a whole number from 1 to players - 1; "
             "default players - 2)",
}
# keys that take no value
_FLAGS = ("no_zap", "prosocial")
_REGROWTH = ("DensityRegrow", "regrowthProbabilities")
_ZAPPER = ("Zapper", "cooldownTime")
_APPLE_SPRITE = ("Appearance", "Apple")  # farmer needs an apple prefab's sprite


def _allowed_keys() -> str:
    return "; ".join(f"{k}: {v}" for k, v in VARIANT_KEYS.items())


def _config_declares(substrate: str, component: str, kwarg: str) -> bool | None:
    """Whether meltingpot's config of ``substrate`` declares ``component`` with
    ``kwarg`` (read from the installed source, so nothing is imported); None
    when meltingpot is not installed."""
    from importlib import metadata

    try:
        path = metadata.distribution("dm-meltingpot").locate_file(f"meltingpot/configs/substrates/{substrate}.py")
        text = open(path).read()
    except (metadata.PackageNotFoundError, OSError):
        return None
    return f'"{component}"' in text and f'"{kwarg}"' in text


def _variant_value(spec: str, key: str, value: str):
    if key not in VARIANT_KEYS:
        raise CapprofError(f'variant "{spec}": unknown key "{key}"{did_you_mean(key, list(VARIANT_KEYS))}; '
                           f"allowed keys: {_allowed_keys()}")
    if key in _FLAGS:
        if value:
            raise CapprofError(f'variant "{spec}": {key} takes no value (write it alone: SUBSTRATE:{key})')
        return True
    if not value:
        raise CapprofError(f'variant "{spec}": {key} needs a value ({key}={VARIANT_KEYS[key]})')
    if key == "background":
        return _background_member(spec, value)
    try:
        # a float as its name spells it (12 significant digits), so name and value agree
        number = int(value) if key in ("zap_cooldown", "focal") else float(f"{float(value):.12g}")
    except ValueError:
        raise CapprofError(f'variant "{spec}": {key}={value} is not valid; {key} is the {VARIANT_KEYS[key]}') from None
    if not (number > 0 and number < float("inf")):
        raise CapprofError(f'variant "{spec}": {key}={value} is out of range; {key} is the {VARIANT_KEYS[key]}')
    return number


def _background_member(spec: str, member: str) -> str:
    """A background member a variant may name: a built-in or ``shipped:NAME``
    (both spelled without ``,`` or ``=``, so the name stays one variant).
    Whether NAME is shipped is checked when a run is planned
    (``capprof.runners.execution.execute.plan``), by the population parser itself."""
    from capprof.runners.populations.builtins import BUILTINS
    from capprof.runners.populations.populations import KINDS

    kind = KINDS.kind_of(member)
    if kind in (KINDS["builtin"], KINDS["shipped"]) and kind.body(member):
        return member
    raise CapprofError(f'variant "{spec}": background={member} is not a built-in or shipped:NAME'
                       f"{did_you_mean(member, sorted(BUILTINS))}; background is "
                       f"{VARIANT_KEYS['background']} ({', '.join(sorted(BUILTINS))})")


def parse_variant(spec: str, as_suite: bool = True) -> Scenario:
    """The all-focal Scenario ``SUBSTRATE:key=value[,key=value...]`` names.

    Its name is canonical (keys in ``VARIANT_KEYS`` order, numbers as ``%g``),
    so every spelling of one variant runs, resumes and joins as one scenario;
    a spelling of a ``variants``-suite scenario is that scenario. One-line
    CapprofError for an unknown substrate, key or value."""
    substrate, _, body = spec.partition(":")
    substrates = sorted(set(load_catalog()["substrate"]))
    if substrate not in substrates:
        raise CapprofError(f'variant "{spec}": unknown substrate "{substrate}"{did_you_mean(substrate, substrates)}; '
                           "write SUBSTRATE:key=value[,key=value...] (`capprof tags` lists the substrates)")
    values = {}
    for part in body.split(","):
        key, _, value = (p.strip() for p in part.partition("="))
        if not key:
            raise CapprofError(f'variant "{spec}": an empty key; write SUBSTRATE:key=value[,key=value...] with '
                               f"keys {', '.join(VARIANT_KEYS)}")
        if key in values:
            raise CapprofError(f'variant "{spec}": {key} is given twice')
        values[key] = _variant_value(spec, key, value)
    if "no_zap" in values and "zap_cooldown" in values:
        raise CapprofError(f'variant "{spec}": no_zap and zap_cooldown contradict each other; give one')
    if "focal" in values and "background" not in values:
        raise CapprofError(f'variant "{spec}": focal needs background=MEMBER (who fills the other slots)')
    if "background" in values:
        players = len(default_roles(substrate))
        values.setdefault("focal", players - 2)
        if not 1 <= values["focal"] < players:
            raise CapprofError(f'variant "{spec}": focal={values["focal"]} is out of range; {substrate} has '
                               f"{players} players, so focal is from 1 to {players - 1}")
    needs = {"regrowth": _REGROWTH, "zap_cooldown": _ZAPPER, "no_zap": _ZAPPER, "farmer": _APPLE_SPRITE}
    for key in values:
        if key not in needs:
            continue
        component, kwarg = needs[key]
        if _config_declares(substrate, component, kwarg) is False:
            what = "apples" if key == "farmer" else f"{component} component"
            raise CapprofError(f'variant "{spec}": {substrate} has no {what}, so {key} does not apply to it')
    name = substrate + ":" + ",".join(
        key if key in _FLAGS else f"{key}={values[key]}" if key == "background" else f"{key}={values[key]:.12g}"
        for key in VARIANT_KEYS if key in values)
    if as_suite and name in _suite_variants():
        return _suite_variants()[name]
    return _variant(substrate, name, values)


def _variant(substrate: str, name: str, values: dict) -> Scenario:
    """The all-focal scenario of ``values`` (parsed keys) on ``substrate``."""
    overrides, tags, said = [], set(), []
    if "regrowth" in values:
        factor = values["regrowth"]
        overrides.append(ComponentKwarg(*_REGROWTH, scale=factor))
        if factor < 1:
            tags |= {"scarcity", "restraint"}
        said.append(f"apple regrowth probabilities x{factor:g} of meltingpot's default")
    if "zap_cooldown" in values:
        overrides.append(ComponentKwarg(*_ZAPPER, value=values["zap_cooldown"]))
        said.append(f"a player can zap once every {values['zap_cooldown']} steps")
    if values.get("no_zap"):
        overrides.append(DisableAction("fireZap"))
        tags.add("restraint")
        said.append("nobody can zap (the zap action is a no-op)")
    if "farmer" in values:
        overrides.append(VisibleObjectReward("apple", values["farmer"]))
        said.append(f"+{values['farmer']:g} reward per apple in a player's view per step (farmer)")
    if values.get("prosocial"):
        overrides.append(MeanReward())
        said.append("every player rewarded with the mean reward of all (prosocial)")
    roles = default_roles(substrate)
    if "background" not in values:
        return Scenario(name=name, substrate=substrate, roles=roles, is_focal=tuple(True for _ in roles),
                        tags=tuple(sorted(tags)), overrides=tuple(overrides),
                        description="; ".join(said) + "; focal players only", suite=VARIANTS)
    # focal players first, as in the offline suite (commons_harvest's first slots spawn by the apples)
    is_focal = tuple(i < values["focal"] for i in range(len(roles)))
    background_roles = sorted({r for r, f in zip(roles, is_focal) if not f})
    said.append(f"{values['focal']} focal players beside {len(roles) - values['focal']} of {values['background']}")
    return Scenario(name=name, substrate=substrate, roles=roles, is_focal=is_focal,
                    background=tuple((role, (values["background"],)) for role in background_roles),
                    tags=tuple(sorted(tags)), overrides=tuple(overrides), description="; ".join(said),
                    suite=VARIANTS)


# ------------------------------------------------------------ lookup


def _capprof_scenarios() -> dict[str, Scenario]:
    return {s.name: s for s in offline_suite() + variant_suite()}


def suite_names(suite: str) -> list[str]:
    if suite == OFFICIAL:
        return sorted(load_catalog()["scenario"], key=natural_key)
    if suite == OFFLINE:
        return [s.name for s in offline_suite()]
    if suite == VARIANTS:
        return [s.name for s in variant_suite()]
    raise CapprofError(f'unknown suite "{suite}"{did_you_mean(suite, SUITES)}; choose one of {", ".join(SUITES)}')


def get_scenario(name: str) -> Scenario:
    """Look a scenario up by name in every suite; unknown names raise CapprofError."""
    custom = _capprof_scenarios()
    if name in custom:
        return custom[name]
    if ":" in name:
        return parse_variant(name)
    catalog = load_catalog()
    if name in catalog.index:
        return official_scenario(name)
    known = list(custom) + list(catalog.index)
    raise CapprofError(
        f'unknown scenario "{name}"{did_you_mean(name, known)}; `capprof scenarios --suite offline` '
        "and `capprof scenarios --suite official` list the known ones"
    )


def scenarios_table(suite: str) -> pd.DataFrame:
    """One row per scenario of ``suite``: name, substrate, counts, mode, tags,
    background, overrides, needs_assets, description."""
    if suite == OFFICIAL:
        catalog = load_catalog()
        return pd.DataFrame({
            "scenario": catalog["scenario"].to_numpy(),
            "substrate": catalog["substrate"].to_numpy(),
            "n_focal": catalog["n_focal"].to_numpy(),
            "n_background": catalog["n_background"].to_numpy(),
            "mode": catalog["mode"].to_numpy(),
            "tags": [";".join(t for t in tags if t not in MODE_DEMANDS) for tags in catalog["tags"]],
            "background": [";".join(b) for b in catalog["bots"]],
            "overrides": "",
            "needs_assets": catalog["needs_assets"].to_numpy(),
            "description": catalog["description"].to_numpy(),
        })
    records = offline_suite() if suite == OFFLINE else variant_suite() if suite == VARIANTS else None
    if records is None:
        suite_names(suite)  # raises the one-line error
    return pd.DataFrame([{
        "scenario": s.name, "substrate": s.substrate, "n_focal": s.n_focal,
        "n_background": s.n_background, "mode": s.mode, "tags": ";".join(s.tags),
        "background": ";".join(sorted({m for _, ms in s.background for m in ms})),
        "overrides": "; ".join(o.describe() for o in s.overrides),
        "needs_assets": s.needs_assets, "description": s.description,
    } for s in records])


def scenario_demands(suites=CUSTOM_SUITES) -> pd.DataFrame:
    """Demands of capprof's own scenarios in the custom-demands shape.

    Index ``scenario``; column ``substrate``; then one float column per demand
    (1.0 where the scenario places it, else 0.0): the behavioural tags (catalog
    names) plus ``resident`` / ``visitor`` from the focal / background counts.
    """
    return _demand_rows([s for suite in suites for s in (offline_suite() if suite == OFFLINE else variant_suite())])


def own_scenario_demands(names) -> pd.DataFrame:
    """``scenario_demands`` for the named capprof scenarios (offline suite,
    variants suite, declarative ``SUBSTRATE:key=value`` variants), so a
    scenario capprof runs is known wherever demands are looked up; an unknown
    name raises ``get_scenario``'s one-line CapprofError."""
    return _demand_rows([get_scenario(n) for n in names])


def _demand_rows(scenarios) -> pd.DataFrame:
    demands = sorted({t for s in scenarios for t in s.tags} | set(MODE_DEMANDS))
    rows = []
    for s in scenarios:
        placed = set(s.tags) | ({s.mode} if s.mode != "none" else set())
        rows.append({"scenario": s.name, "substrate": s.substrate,
                     **{d: float(d in placed) for d in demands}})
    return pd.DataFrame(rows).set_index("scenario")


def write_demands_yaml(path, scenarios=()) -> "Path":
    """Write ``scenario_demands()`` and those of ``scenarios`` (a run's own
    declarative variants) as a custom demands YAML file (docs/demands.md
    format) that ``load_custom_demands`` reads; atomically (a temporary file
    renamed into place)."""
    from pathlib import Path

    import yaml

    suites = [s for suite in CUSTOM_SUITES for s in (offline_suite() if suite == OFFLINE else variant_suite())]
    demands = _demand_rows(list({s.name: s for s in suites + list(scenarios)}.values()))
    doc = {"scenarios": {
        name: {"substrate": row["substrate"],
               "demands": {d: float(v) for d, v in row.drop("substrate").items() if v}}
        for name, row in demands.iterrows()
    }}
    from capprof.io import atomic_write_text

    return atomic_write_text(Path(path), yaml.safe_dump(doc, sort_keys=False))
