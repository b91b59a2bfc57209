"""Scenario x demand matrices, tag sets, and user-supplied demand files.

A demand matrix is a DataFrame indexed by scenario with one float column per
demand (see docs/schema.md):

* one column per substrate (one-hot: 1 where the scenario runs on it);
* one column per substrate family that has two or more substrates
  (``substrate_families``: chemistry, collaborative_cooking, ...,
  in_the_matrix), 1 where the scenario's substrate belongs to it;
* ``resident`` and ``visitor`` from the focal / background counts;
* one column per behavioural tag, 1 where meltingpot tags the scenario.

Custom demand files may raise any demand to a graded level in 0..5 (as in
demand-level annotation schemes), add demands, or describe new scenarios.
Which group a demand column belongs to (substrate, family, mode, behaviour) comes from
one function, ``demand_groups(columns)``; every stage uses it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from capprof.errors import CapprofError, did_you_mean
from capprof.sniff import read_text
from capprof.tagging.catalog import (
    TAG_CORRECTIONS,
    all_tags,
    checked_tag,
    contest_heldout_scenarios,
    correct_tag,
    load_catalog,
)
from capprof.tagging.constants import DEMAND_GROUPS, FAMILY_SEPARATOR, MATRIX_GAMES, MODE_DEMANDS, TAG_SETS

MAX_LEVEL = 5.0
# `capprof run` writes the demands of the offline and variant scenarios it ran
# beside its Parquet files under this name (Parquet readers skip `_` files).
RUN_DEMANDS_FILE = "_demands.yaml"
NEW_DEMAND_PREFIX = "new:"
_FORMAT_FIX = "a demands file is UTF-8 YAML or CSV text (docs/demands.md)"


def contest_tags(catalog: pd.DataFrame | None = None) -> list[str]:
    """The 16 tags of the contest held-out scenarios (resident and visitor
    among them), as in contest report section 3.3."""
    catalog = load_catalog() if catalog is None else catalog
    held_out = catalog.loc[contest_heldout_scenarios(catalog)]
    return sorted({t for tags in held_out["tags"] for t in tags})


def resolve_tag_set(tag_set: str | Sequence[str], catalog: pd.DataFrame | None = None) -> list[str]:
    """Turn ``"all"``, ``"contest"`` or an explicit list into behavioural tag
    names (resident / visitor excluded: they are mode demands)."""
    catalog = load_catalog() if catalog is None else catalog
    known = all_tags(catalog)
    all_set, contest_set = TAG_SETS
    if isinstance(tag_set, str):
        if tag_set == all_set:
            tags = known
        elif tag_set == contest_set:
            tags = contest_tags(catalog)
        else:
            tags = [t.strip() for t in tag_set.split(",") if t.strip()]
    else:
        tags = list(tag_set)
    resolved = []
    for t in tags:
        t = checked_tag(t, known, 'use "all", "contest" or tags listed by `capprof tags`')
        if t not in MODE_DEMANDS and t not in resolved:
            resolved.append(t)
    return sorted(resolved)


def substrate_families(substrates: Iterable[str]) -> dict[str, list[str]]:
    """Each family of two or more of ``substrates``, with its substrates (sorted).

    A substrate's game is its name before "__" (``chemistry`` for
    chemistry__two_metabolic_cycles and its three siblings), and every
    ``*_in_the_matrix`` game also belongs to ``in_the_matrix``. Sibling
    substrates share mechanics, so a team's ability on one says something
    about the others: a scenario of an unseen substrate borrows it through
    the family column (docs/evaluation.md, held-out substrates). A family of
    one substrate would only repeat its substrate column, and a family named
    like a substrate would clash with it; neither is a column.
    """
    substrates = sorted(set(substrates))
    members: dict[str, list[str]] = {}
    for substrate in substrates:
        game = substrate.split(FAMILY_SEPARATOR)[0]
        names = [game] + ([MATRIX_GAMES] if game.endswith("_" + MATRIX_GAMES) else [])
        for name in names:
            members.setdefault(name, []).append(substrate)
    return {name: subs for name, subs in sorted(members.items()) if len(subs) > 1 and name not in substrates}


def demand_groups(columns: Iterable[str], catalog: pd.DataFrame | None = None) -> dict[str, str]:
    """The group of each demand column: ``"substrate"``, ``"family"``,
    ``"mode"`` or ``"behaviour"`` (in the order given).

    The one place demand groups come from: substrate columns are the
    catalog's substrates (custom scenarios must run on one of them), family
    columns their families (``substrate_families``), mode columns are
    ``resident`` and ``visitor``, everything else (catalog tags and custom
    ``new_demands``) is a behaviour.
    """
    catalog = load_catalog() if catalog is None else catalog
    substrates = set(catalog["substrate"])
    families = set(substrate_families(substrates))
    substrate_group, family_group, mode_group, behaviour_group = DEMAND_GROUPS

    def group(column: str) -> str:
        if column in substrates:
            return substrate_group
        if column in families:
            return family_group
        return mode_group if column in MODE_DEMANDS else behaviour_group

    return {str(c): group(str(c)) for c in columns}


def _family_levels(substrate_levels: pd.DataFrame, families: dict[str, list[str]]) -> pd.DataFrame:
    """The family columns of scenarios given their substrate columns: 1 where
    the scenario runs on one of the family's substrates."""
    return pd.DataFrame({name: (substrate_levels.reindex(columns=subs, fill_value=0.0) > 0).any(axis=1).astype(float)
                         for name, subs in families.items()}, index=substrate_levels.index)


def catalog_demands(
    catalog: pd.DataFrame | None = None,
    tags: str | Sequence[str] = "all",
) -> pd.DataFrame:
    """Binary demand matrix of every catalog scenario."""
    catalog = load_catalog() if catalog is None else catalog
    tag_names = resolve_tag_set(tags, catalog)
    substrates = sorted(catalog["substrate"].unique())
    index = pd.Index(catalog["scenario"], name="scenario")
    columns = {}
    for s in substrates:
        columns[s] = (catalog["substrate"].to_numpy() == s).astype(float)
    columns.update(_family_levels(pd.DataFrame(columns, index=index), substrate_families(substrates)))
    for m in MODE_DEMANDS:
        columns[m] = (catalog["mode"].to_numpy() == m).astype(float)
    tag_sets = [set(t) for t in catalog["tags"]]
    for t in tag_names:
        columns[t] = np.array([t in ts for ts in tag_sets], dtype=float)
    return pd.DataFrame(columns, index=index)


def demand_matrix(
    scenarios: Iterable[str] | None = None,
    tags: str | Sequence[str] = "all",
    custom: pd.DataFrame | None = None,
    catalog: pd.DataFrame | None = None,
    drop_unused: bool = True,
) -> pd.DataFrame:
    """Demands of ``scenarios`` (all catalog scenarios by default).

    ``custom`` (from ``load_custom_demands``) overrides catalog levels for the
    scenarios it names and adds new scenarios and demands. With
    ``drop_unused``, demands that are zero for every requested scenario are
    dropped: they cannot be learned from these rows; so is a family column
    whose requested scenarios all run on one substrate (it would repeat
    that substrate's column).
    """
    catalog = load_catalog() if catalog is None else catalog
    base = catalog_demands(catalog, tags)
    if custom is not None and len(custom):
        custom_levels = custom.drop(columns=["substrate"])
        for col in custom_levels.columns:
            if col not in base.columns:
                base[col] = 0.0
        new_rows = [s for s in custom.index if s not in base.index]
        if new_rows:
            extra = pd.DataFrame(0.0, index=pd.Index(new_rows, name="scenario"), columns=base.columns)
            for s in new_rows:
                extra.loc[s, custom.loc[s, "substrate"]] = 1.0
            families = substrate_families(catalog["substrate"])
            extra[list(families)] = _family_levels(extra, families)
            base = pd.concat([base, extra])
        for s in custom.index:
            given = custom_levels.loc[s].dropna()
            base.loc[s, given.index] = given.to_numpy(dtype=float)
    if scenarios is not None:
        scenarios = list(dict.fromkeys(scenarios))
        missing = [s for s in scenarios if s not in base.index]
        if missing:
            raise CapprofError(
                f"{len(missing)} scenario(s) have no demands, e.g. \"{missing[0]}\""
                f"{did_you_mean(missing[0], base.index)}; describe them in a custom "
                "demands file (--demands FILE, see docs/demands.md)"
            )
        base = base.loc[scenarios]
    if drop_unused:
        base = base.loc[:, (base != 0).any(axis=0)]
        base = base.drop(columns=_single_substrate_families(base, catalog))
    return base


def _single_substrate_families(matrix: pd.DataFrame, catalog: pd.DataFrame) -> list[str]:
    """Family columns of ``matrix`` whose scenarios with the family run on
    fewer than two of its substrates."""
    single = []
    for name, subs in substrate_families(catalog["substrate"]).items():
        if name not in matrix.columns:
            continue
        used = [s for s in subs if s in matrix.columns and (matrix.loc[matrix[name] > 0, s] > 0).any()]
        if len(used) < 2:
            single.append(name)
    return single


def custom_demands_for(scores_path, demands_path=None, catalog: pd.DataFrame | None = None):
    """The custom demands that go with a score table, or None.

    An explicit ``demands_path`` wins; otherwise a run directory written by
    ``capprof run`` brings its own ``_demands.yaml``.
    """
    if demands_path is not None:
        if not str(demands_path).strip():
            raise CapprofError("the demands file path is empty; give a .yaml or .csv file (docs/demands.md)")
        return load_custom_demands(demands_path, catalog)
    beside = Path(str(scores_path)) / RUN_DEMANDS_FILE
    if Path(str(scores_path)).is_dir() and beside.exists():
        return load_custom_demands(beside, catalog)
    return None


def known_scenarios(custom: pd.DataFrame | None = None, catalog: pd.DataFrame | None = None) -> dict[str, str]:
    """Scenario names that have demands, the catalog's plus a custom file's,
    each mapped to its substrate (``validate_scores`` checks score tables
    against both; ``set(...)`` of it gives the names)."""
    catalog = load_catalog() if catalog is None else catalog
    names = dict(zip(catalog["scenario"], catalog["substrate"]))
    if custom is not None:
        names.update(zip(custom.index, custom["substrate"]))
    return names


# ---------------------------------------------------------------- custom files


def _known_demand_names(catalog: pd.DataFrame) -> set[str]:
    return (set(all_tags(catalog)) | set(MODE_DEMANDS) | set(catalog["substrate"]) | set(TAG_CORRECTIONS)
            | set(substrate_families(catalog["substrate"])))


def _parse_level(value, scenario: str, demand: str, source: str) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        level = float(value)
    except (TypeError, ValueError):
        raise CapprofError(
            f'{source}: demand "{demand}" of scenario "{scenario}" is "{value}", not a number; '
            f"use a level from 0 to {MAX_LEVEL:g}"
        ) from None
    if not math.isfinite(level) or level < 0 or level > MAX_LEVEL:
        raise CapprofError(
            f'{source}: demand "{demand}" of scenario "{scenario}" is {value}; '
            f"levels must be between 0 and {MAX_LEVEL:g}"
        )
    return level


class _DuplicateKey(Exception):
    pass


def _strict_yaml_load(text: str):
    """yaml.safe_load, except that a repeated mapping key is an error (PyYAML
    silently keeps the last one, which would drop a scenario's demands)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        keys = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in keys:
                raise _DuplicateKey(f"{key}\t{key_node.start_mark.line + 1}")
            keys.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return yaml.load(text, Loader=StrictLoader)


# the keys a YAML demands file and each of its scenarios may hold (docs/demands.md)
YAML_KEYS = ("new_demands", "scenarios")
SCENARIO_KEYS = ("substrate", "demands")


def _records_from_yaml(path: Path) -> tuple[list[tuple[str, str | None, dict]], list[str]]:
    import yaml

    text = read_text(path, "demands file", _FORMAT_FIX)
    try:
        doc = _strict_yaml_load(text)
    except _DuplicateKey as exc:
        key, line = str(exc).split("\t")
        raise CapprofError(f'{path}: "{key}" appears twice (line {line}); keep one entry') from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise CapprofError(f"{path}: not valid YAML{where}; see docs/demands.md for the format") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("scenarios"), dict):
        raise CapprofError(
            f"{path}: expected a mapping with a `scenarios:` key mapping scenario names "
            "to {substrate, demands}; see docs/demands.md"
        )
    unknown = sorted(str(k) for k in doc if k not in YAML_KEYS)
    if unknown:
        raise CapprofError(f'{path}: unknown key "{unknown[0]}"{did_you_mean(unknown[0], YAML_KEYS)}; '
                           f"the file holds {' and '.join(YAML_KEYS)} (docs/demands.md)")
    new_demands = doc.get("new_demands") or []
    if not isinstance(new_demands, list) or not all(isinstance(d, str) and d.strip() for d in new_demands):
        raise CapprofError(f"{path}: `new_demands` must be a list of names, e.g. new_demands: [night_vision]")
    records = []
    for name, body in doc["scenarios"].items():
        name = str(name)
        body = body or {}
        if not isinstance(body, dict):
            raise CapprofError(f'{path}: scenario "{name}" must map to {{substrate, demands}}')
        unknown = sorted(str(k) for k in body if k not in SCENARIO_KEYS)
        if unknown:
            raise CapprofError(f'{path}: scenario "{name}" has an unknown key "{unknown[0]}"'
                               f"{did_you_mean(unknown[0], SCENARIO_KEYS)}; a scenario holds "
                               f"{' and '.join(SCENARIO_KEYS)}")
        substrate = body.get("substrate")
        if substrate is not None and not isinstance(substrate, str):
            raise CapprofError(f'{path}: `substrate` of scenario "{name}" must be one substrate name, '
                               f"e.g. substrate: clean_up")
        demands = body.get("demands") or {}
        if not isinstance(demands, dict):
            raise CapprofError(f'{path}: `demands` of scenario "{name}" must map demand names to levels')
        records.append((name, body.get("substrate"), dict(demands)))
    return records, [str(d) for d in new_demands]


def _records_from_csv(path: Path) -> tuple[list[tuple[str, str | None, dict]], list[str]]:
    import io

    from capprof.readers import csv_delimiter

    text = read_text(path, "demands file", _FORMAT_FIX)
    sep = csv_delimiter(text.splitlines()[0] if text.strip() else "")
    try:
        table = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, header=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CapprofError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]}); see docs/demands.md") from None
    names = [c.strip() for c in table.iloc[0]]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise CapprofError(f"{path}: column `{repeated[0]}` appears more than once in the header; keep one")
    table = table.iloc[1:].set_axis(names, axis=1)
    table = table[(table != "").any(axis=1)]  # blank lines carry nothing
    if "scenario" not in table.columns:
        raise CapprofError(
            f"{path}: missing the `scenario` column (the header has {', '.join(names[:4])}); "
            "see docs/demands.md for the format"
        )
    blank = table["scenario"].str.strip() == ""
    if blank.any():
        raise CapprofError(f"{path}: line {int(table.index[blank][0]) + 1} has an empty `scenario`; name the scenario")
    new_demands = [c[len(NEW_DEMAND_PREFIX):].strip() for c in table.columns if c.startswith(NEW_DEMAND_PREFIX)]
    if "" in new_demands:
        raise CapprofError(f"{path}: a `{NEW_DEMAND_PREFIX}` column has no demand name; write e.g. "
                           f"{NEW_DEMAND_PREFIX}night_vision")
    table = table.rename(columns=lambda c: c[len(NEW_DEMAND_PREFIX):].strip() if c.startswith(NEW_DEMAND_PREFIX) else c)
    dupes = table["scenario"][table["scenario"].duplicated()].unique()
    if len(dupes):
        raise CapprofError(f'{path}: scenario "{dupes[0]}" appears more than once; keep one row per scenario')
    demand_cols = [c for c in table.columns if c not in ("scenario", "substrate")]
    records = []
    for _, row in table.iterrows():
        demands = {c: row[c] for c in demand_cols if str(row[c]).strip() != ""}
        substrate = row["substrate"] if "substrate" in table.columns and row["substrate"] else None
        records.append((row["scenario"], substrate, demands))
    return records, new_demands


def load_custom_demands(path: str | Path, catalog: pd.DataFrame | None = None) -> pd.DataFrame:
    """Read and validate a custom demands file (CSV or YAML, docs/demands.md).

    Returns a DataFrame indexed by scenario with a ``substrate`` column and one
    float column per demand named in the file (NaN where a row is silent).
    """
    path = Path(path)
    catalog = load_catalog() if catalog is None else catalog
    if not path.exists():
        raise CapprofError(f"demands file {path} does not exist; check the path")
    if path.is_dir():
        raise CapprofError(f"demands file {path} is a directory, not a file; pass the .yaml or .csv file itself")
    if path.suffix.lower() in (".yaml", ".yml"):
        records, new_demands = _records_from_yaml(path)
    elif path.suffix.lower() == ".csv":
        records, new_demands = _records_from_csv(path)
    else:
        raise CapprofError(f"{path}: demands files must end in .csv, .yaml or .yml")
    if not records:
        raise CapprofError(f"{path}: describes no scenario; add at least one")
    known = _known_demand_names(catalog)
    for d in new_demands:
        if d in known:
            raise CapprofError(f'{path}: new demand "{d}" already exists; use it without declaring it')
    known_substrates = set(catalog["substrate"])
    families = set(substrate_families(known_substrates))
    rows, index = [], []
    for scenario, substrate, demands in records:
        substrate = _substrate_of(path, scenario, substrate, catalog, known_substrates)
        row = {"substrate": substrate}
        for name, value in demands.items():
            name = str(name)
            canonical = _demand_name(path, scenario, name, known, new_demands, known_substrates, families)
            row[canonical] = _parse_level(value, scenario, name, str(path))
        rows.append(row)
        index.append(scenario)
    return pd.DataFrame(rows, index=pd.Index(index, name="scenario"))


def _substrate_of(path: Path, scenario: str, substrate, catalog: pd.DataFrame, known_substrates: set) -> str:
    """The substrate a demands row describes: the catalog's for a catalog
    scenario given without one, else the one given, which must be known and
    agree with the catalog's."""
    if substrate is None:
        if scenario not in catalog.index:
            raise CapprofError(
                f'{path}: scenario "{scenario}" is not in the catalog'
                f"{did_you_mean(scenario, catalog.index)}; give its `substrate` to describe a new scenario"
            )
        return catalog.loc[scenario, "substrate"]
    if substrate not in known_substrates:
        raise CapprofError(
            f'{path}: unknown substrate "{substrate}" for scenario "{scenario}"'
            f"{did_you_mean(substrate, known_substrates)}"
        )
    if scenario in catalog.index and catalog.loc[scenario, "substrate"] != substrate:
        raise CapprofError(
            f'{path}: scenario "{scenario}" is given substrate "{substrate}" but runs on '
            f'"{catalog.loc[scenario, "substrate"]}" in the catalog; drop its `substrate` to grade the '
            "catalog scenario, or give your scenario a new name (a new scenario row with its substrate)"
        )
    return substrate


def _demand_name(path: Path, scenario: str, name: str, known: set, new_demands, known_substrates: set,
                 families: set) -> str:
    """The canonical name of demand ``name`` in a row, refused when it is
    neither known nor declared new, or when it names a substrate or a
    substrate family."""
    canonical = correct_tag(name)
    if canonical not in known and name not in new_demands:
        raise CapprofError(
            f'{path}: unknown demand "{name}" for scenario "{scenario}"'
            f"{did_you_mean(name, known - set(TAG_CORRECTIONS))}; declare brand-new demands "
            f"(YAML `new_demands:` list, or CSV column `{NEW_DEMAND_PREFIX}{name}`)"
        )
    if canonical in known_substrates:
        raise CapprofError(
            f'{path}: "{canonical}" is a substrate, set by the `substrate` field, not a demand level'
        )
    if canonical in families:
        raise CapprofError(
            f'{path}: "{canonical}" is a substrate family, set from the `substrate` field, not a demand level'
        )
    return canonical
