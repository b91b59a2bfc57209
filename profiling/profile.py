"""A capability profile as one object: fit, save, load, predict.

``Profile.fit(scores, demands)`` fits the measurement layout (and, unless
asked not to, the XGBoost assessor beside it); ``profile.save(dir)`` writes
the directory ``capprof profile`` writes; ``Profile.load(dir)`` reads it
back for ``capprof predict``, ``capprof report`` or a Python user.

The directory (``PROFILE_FILES``; docs/schema.md):

=================  ==========================================================
profiles.csv       abilities: team, ability, mean, sd, hdi_low, hdi_high, hdi_prob, cells
posterior.nc       the layout's posterior (ArviZ InferenceData, NetCDF)
diagnostics.csv    one row: model, max_rhat, min_ess_bulk, ..., fit_s
assessor.json      the assessor's trees (XGBoost JSON; absent without assessor)
importances.csv    the assessor's feature, importance (absent without assessor)
demands.csv        the demand matrix the profile was fitted on
model.json         metadata; ``"complete": true`` marks a whole profile
=================  ==========================================================

Saving is atomic: every file is written into a temporary directory beside
the target, ``model.json`` last, and the directory is renamed into place
(an existing profile is swapped out only once the new one is complete, with
Ctrl-C held off during the swap; files of other tools in it, such as an
``evaluate.csv``, are carried over). ``load`` refuses a directory whose
``model.json`` is missing, unreadable or not marked complete, or that lacks
a file, with one line naming the file and the fix.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from capprof.errors import CapprofError, did_you_mean, note
from capprof.io import replace_directory, temporary_directory
from capprof.output import write_csv
from capprof.profiling.constants import (
    DEFAULT_LAYOUT_MODE,
    PREDICT_OUTPUT_COLUMNS,
    RHAT_MAX,
)
from capprof.profiling.files import check_writable, read_csv, umask, write_json_atomic
from capprof.readers import read_json
from capprof.profiling.predictors import Assessor, MeasurementLayout, ModelSpec, parse_model_spec
from capprof.profiling.predictors.layout import layout_class

PROFILE_FILES = {
    "profiles": "profiles.csv",
    "posterior": "posterior.nc",
    "diagnostics": "diagnostics.csv",
    "assessor": "assessor.json",
    "importances": "importances.csv",
    "demands": "demands.csv",
    "meta": "model.json",
}
# files written only when the profile has an assessor
ASSESSOR_FILES = ("assessor", "importances")
FORMAT = 2
FLOAT_FORMAT = "%.6g"


def _refit_fix(directory: Path) -> str:
    return f"run `capprof profile SCORES --out {directory}` again"


@dataclass
class Profile:
    """A fitted capability profile.

    ``layout``: the fitted layout predictor (its ``posterior_`` is
    ``posterior``); ``assessor``: the fitted assessor or None; ``demands``:
    the scenario x demand matrix fitted on; ``metadata``: what produced it
    (normalisation, tags, demands file, dropped scenarios, ...);
    ``abilities``: the per-(team, ability) posterior summary;
    ``diagnostics``: one row of sampling diagnostics.
    """

    layout: MeasurementLayout
    demands: pd.DataFrame
    assessor: Assessor | None = None
    metadata: dict = field(default_factory=dict)
    abilities: pd.DataFrame | None = None
    diagnostics: pd.DataFrame | None = None

    def __post_init__(self):
        if self.abilities is None:
            self.abilities = self.layout.abilities()
        if self.diagnostics is None:
            self.diagnostics = pd.DataFrame([{"model": self.layout.name, **self.layout.diagnostics_,
                                              "fit_s": getattr(self.layout, "fit_seconds_", float("nan"))}])

    # ------------------------------------------------------------ views

    @property
    def posterior(self):
        """The layout's posterior (ArviZ InferenceData)."""
        return self.layout.posterior_

    def contrasts(self, hdi_prob: float = 0.9) -> pd.DataFrame:
        """Where each team stands out (``team_contrasts``), each team compared
        with the other teams whose cells inform the same ability."""
        informed = None
        if "cells" in self.abilities.columns:
            informed = self.abilities.pivot(index="team", columns="ability", values="cells").fillna(0) > 0
        return team_contrasts(self.posterior, hdi_prob, informed)

    @property
    def importances(self) -> pd.DataFrame | None:
        """The assessor's feature importances (feature, importance), or None."""
        return None if self.assessor is None else self.assessor.feature_importances_

    @property
    def teams(self) -> list[str]:
        return list(self.layout.teams_)

    @property
    def converged(self) -> bool:
        d = self.layout.diagnostics_
        return d["max_rhat"] <= RHAT_MAX and d["divergences"] == 0

    # ------------------------------------------------------------ fit

    @classmethod
    def fit(cls, scores: pd.DataFrame, demands: pd.DataFrame, mode: str = DEFAULT_LAYOUT_MODE,
            draws: int = 1000, tune: int = 500, seed: int = 0, assessor: bool = True,
            progressbar: bool = False, metadata: dict | None = None, layout_params: dict | None = None,
            assessor_params: dict | None = None) -> "Profile":
        """Fit the layout of ``mode`` (and the assessor) on normalised scores.
        ``layout_params``/``assessor_params``: further ``__init__`` parameters
        of each (``capprof profile --models 'layout-joint(draws=500)'``; they
        override ``draws``/``tune``/``seed``). Emits a note when the sampler
        has not clearly converged."""
        layout = layout_class(mode)(**{"draws": draws, "tune": tune, "seed": seed,
                                       "progressbar": progressbar, **(layout_params or {})})
        layout.fit(scores, demands)
        fitted_assessor = Assessor(**{"seed": seed, **(assessor_params or {})}).fit(scores, demands) \
            if assessor else None
        profile = cls(layout=layout, demands=demands.astype(float), assessor=fitted_assessor,
                      metadata=dict(metadata or {}))
        if not profile.converged:
            note(f"the sampler has not clearly converged (R-hat > {RHAT_MAX} or divergences); "
                 "rerun with more --tune and --draws before trusting the profiles")
        if layout.diagnostics_.get("ppc_disagreements", 0):
            from capprof.profiling.checks import ppc_disagreements

            for sentence in ppc_disagreements(layout.posterior_):
                note(f"posterior predictive check: {sentence}; the model misdescribes these scores "
                     "(docs/layout.md)")
        return profile

    # ------------------------------------------------------------ save

    def _meta(self) -> dict:
        layout_params = {k: v for k, v in self.layout.get_params().items() if k != "progressbar"}
        return {
            **self.metadata,
            "format": FORMAT,
            "teams": self.teams,
            "demand_columns": [str(c) for c in self.demands.columns],
            "layout": {"name": self.layout.name, **layout_params},
            # the assessor's own team order: its one-hot columns follow it, and it
            # need not be the layout's (a profile built from separate fits)
            "assessor": None if self.assessor is None else {"name": self.assessor.name,
                                                            "teams": list(self.assessor.teams_),
                                                            **self.assessor.get_params()},
            "files": sorted(self.file_names()),
            "complete": True,
        }

    def file_names(self) -> list[str]:
        """The files this profile writes (the assessor's only when it has one)."""
        return [name for key, name in PROFILE_FILES.items()
                if self.assessor is not None or key not in ASSESSOR_FILES]

    def save(self, directory) -> Path:
        """Write the profile to ``directory`` atomically (module docstring)."""
        target = Path(directory)
        if target.exists() and not target.is_dir():
            raise CapprofError(f"{target} is a file; give a directory for the profile")
        check_writable(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_directory(target)  # stale .NAME.*.tmp of killed saves are removed first
        try:
            os.chmod(tmp, 0o777 & ~umask())  # mkdtemp's 0700 would outlive the rename
            self._write(tmp)
            if target.exists():
                # other tools' files and folders (evaluate.csv, a saved evaluation/, ...)
                # stay; copied, not moved, so a save that fails leaves them where they were
                for entry in target.iterdir():
                    if entry.name in PROFILE_FILES.values():
                        continue
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.copytree(entry, tmp / entry.name, symlinks=True)
                    else:
                        shutil.copy2(entry, tmp / entry.name, follow_symlinks=False)
            replace_directory(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    def _write(self, out: Path) -> None:
        files = PROFILE_FILES
        write_csv(self.abilities, out / files["profiles"], float_format=FLOAT_FORMAT)  # spreadsheet-safe
        self.layout.save_posterior(out / files["posterior"])
        write_csv(self.diagnostics, out / files["diagnostics"], float_format=FLOAT_FORMAT)
        if self.assessor is not None:
            self.assessor.save_booster(out / files["assessor"])
            write_csv(self.importances, out / files["importances"], float_format=FLOAT_FORMAT)
        demands = self.demands.copy()
        demands.index.name = "scenario"
        write_csv(demands, out / files["demands"], index=True, float_format=FLOAT_FORMAT)
        write_json_atomic(out / files["meta"], self._meta())  # last: marks the profile complete

    # ------------------------------------------------------------ load

    @classmethod
    def load(cls, directory) -> "Profile":
        """The profile in ``directory``, or one CapprofError line naming the
        missing or damaged file and the fix."""
        directory = Path(directory)
        fix = _refit_fix(directory)
        meta_path = directory / PROFILE_FILES["meta"]
        if not directory.is_dir() or not meta_path.exists():
            raise CapprofError(f"{directory} holds no profile ({PROFILE_FILES['meta']} missing); "
                               "run `capprof profile SCORES --out DIR` first")
        meta = read_json(meta_path, fix)
        if meta.get("complete") is not True:
            raise CapprofError(f"{meta_path} is not marked complete (interrupted?); {fix}")
        try:
            layout_meta = dict(meta["layout"])
            assessor_meta = meta["assessor"]
            teams = list(meta["teams"])
        except (KeyError, TypeError):
            raise CapprofError(f"{meta_path} lacks the layout, assessor or teams entries; {fix}") from None
        needed = [k for k in PROFILE_FILES if assessor_meta is not None or k not in ASSESSOR_FILES]
        for key in needed:
            path = directory / PROFILE_FILES[key]
            if not path.is_file() or (key != "meta" and path.stat().st_size == 0):
                raise CapprofError(f"{path} is missing or empty; {fix}")
        demands = read_csv(directory / PROFILE_FILES["demands"], fix, index_col="scenario").astype(float)
        layout_meta.pop("name", None)
        idata = MeasurementLayout.read_posterior(directory / PROFILE_FILES["posterior"], fix)
        diagnostics = read_csv(directory / PROFILE_FILES["diagnostics"], fix)
        saved = diagnostics.drop(columns=["model", "fit_s"], errors="ignore").to_dict("records")
        try:
            layout = MeasurementLayout.from_posterior(idata, demands, diagnostics=saved[0] if saved else None,
                                                      **layout_meta)
        except TypeError:
            raise CapprofError(f"{meta_path} has unknown layout parameters; {fix}") from None
        if layout.teams_ != [str(t) for t in teams]:
            raise CapprofError(f"{directory / PROFILE_FILES['posterior']} holds other teams than {meta_path}; {fix}")
        assessor = None
        if assessor_meta is not None:
            params = {k: v for k, v in assessor_meta.items() if k not in ("name", "teams")}
            assessor_teams = assessor_meta.get("teams")
            if not isinstance(assessor_teams, list):
                raise CapprofError(f"{meta_path} lacks the assessor's teams; {fix}")
            assessor = Assessor.from_booster(directory / PROFILE_FILES["assessor"], assessor_teams, demands,
                                             fix=fix, **params)
        abilities = read_csv(directory / PROFILE_FILES["profiles"], fix)
        metadata = {k: v for k, v in meta.items()
                    if k not in ("layout", "assessor", "teams", "demand_columns", "files", "complete", "format")}
        return cls(layout=layout, demands=demands, assessor=assessor, metadata=metadata, abilities=abilities,
                   diagnostics=diagnostics)

    # ------------------------------------------------------------ predict

    def model_names(self) -> list[str]:
        """The models this profile can predict with: its layout, then the assessor."""
        return [self.layout.name] + ([self.assessor.name] if self.assessor is not None else [])

    def _predictor(self, model):
        """The fitted predictor a name or ``ModelSpec`` picks; a spec's
        parameters must be ones that still matter after fitting (the class's
        ``predict_params``, e.g. the layout's ``interval`` and ``seed``) and
        apply to a copy."""
        spec = model if isinstance(model, ModelSpec) else parse_model_spec(str(model))
        name, wanted = spec.label, spec.name
        for predictor in (self.layout, self.assessor):
            if predictor is not None and predictor.name == wanted:
                fixed = [k for k, _ in spec.params if k not in type(predictor).predict_params]
                if fixed:
                    settable = ", ".join(type(predictor).predict_params) or "no parameters"
                    raise CapprofError(
                        f'{spec.label}: "{fixed[0]}" is fixed when the profile is fitted; predict can set '
                        f"{settable} of {wanted} (fit again with `capprof profile --models ...` to change it)")
                if spec.params:
                    predictor = copy.copy(predictor)
                    for key, value in spec.params:
                        setattr(predictor, key, value)
                return predictor
        if wanted.startswith("layout"):
            raise CapprofError(f'this profile holds {self.layout.name} (fitted with --mode {self.layout.mode}), '
                               f'not {wanted}; use --models {self.layout.name}')
        raise CapprofError(f'this profile has no "{name}" model; use any of {", ".join(self.model_names())}')

    def scenario_demands(self, names: Sequence[str], custom: pd.DataFrame | None = None) -> pd.DataFrame:
        """Demand rows of ``names`` (each once, in order). A scenario's demands
        come from ``custom`` when it describes it (a demands file as read by
        ``load_custom_demands``, or plain demand rows), else from
        the profile (the scenarios it was fitted on, custom ones included),
        else from the catalog."""
        from capprof.tagging.catalog import load_catalog
        from capprof.tagging.demands import demand_matrix

        names = list(dict.fromkeys(names))
        if not names:
            raise CapprofError("no scenario to predict; name them with --scenario NAME and/or --scenarios FILE")
        catalog = load_catalog()
        tags = self.metadata.get("tags", "all")
        described = [n for n in names if custom is not None and n in custom.index]
        stored = [n for n in names if n not in described and n in self.demands.index]
        from_catalog = [n for n in names if n not in described and n not in stored]
        unknown = [n for n in from_catalog if n not in catalog.index]
        if unknown and (custom is None or "substrate" in custom.columns):
            # capprof's own scenarios (offline suite, variants) have known demands too
            own = _own_scenarios(unknown)
            if len(own):
                custom = own if custom is None else pd.concat([custom, own]).fillna(0.0)
                described += list(own.index)
                from_catalog = [n for n in from_catalog if n not in own.index]
                unknown = [n for n in unknown if n not in own.index]
        if unknown:
            known = [*catalog.index, *self.demands.index]
            raise CapprofError(
                f'unknown scenario "{unknown[0]}"{did_you_mean(unknown[0], known)} ({len(unknown)} such): neither '
                "in the catalog nor in the profile; describe new scenarios in a demands file given to --scenarios "
                "(docs/demands.md)")
        parts = [self.demands.loc[stored]]
        if described and "substrate" not in custom.columns:  # demand rows given as they are
            parts.append(custom.loc[described].astype(float))
        elif described:  # a demands file (capprof.tagging.demands.load_custom_demands)
            parts.append(demand_matrix(described, tags=tags, custom=custom, catalog=catalog, drop_unused=False))
        if from_catalog:
            parts.append(demand_matrix(from_catalog, tags=tags, catalog=catalog, drop_unused=False))
        # a demand absent from a part (e.g. a catalog substrate the profile never
        # saw) is simply not demanded there
        return pd.concat(parts).fillna(0.0).loc[names]

    def predict(self, teams: Sequence[str] | None = None, scenarios: Sequence[str] = (),
                demands: pd.DataFrame | None = None, models: Sequence[str] | None = None) -> pd.DataFrame:
        """Every (team, scenario) pair's predicted score by each model:
        columns team, scenario, model, predicted, low, high. ``teams``
        defaults to the profiled teams, ``models`` to ``model_names()``;
        ``demands`` describes scenarios by their demands (plain demand rows,
        or a demands file as read by ``load_custom_demands``); the others
        come from the profile or the catalog (``scenario_demands``)."""
        predictors = [self._predictor(m) for m in dict.fromkeys(models or self.model_names())]
        # a model given with parameters keeps its label (e.g. layout-joint(interval=0.5))
        labels = [(m if isinstance(m, ModelSpec) else parse_model_spec(str(m))).label
                  for m in dict.fromkeys(models or self.model_names())]
        rows = self.scenario_demands(scenarios, demands)
        names = list(rows.index)
        pairs = list(itertools.product(list(teams) if teams is not None else self.teams, names))
        pair_teams, pair_scenarios = [p[0] for p in pairs], [p[1] for p in pairs]
        frames = []
        for predictor, label in zip(predictors, labels):
            frame = predictor.predict(pair_teams, pair_scenarios, demands=rows)
            frame.insert(2, "model", label)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)[list(PREDICT_OUTPUT_COLUMNS)]


# ------------------------------------------------------------------ scenario lists


def read_scenarios_file(path) -> tuple[list[str], pd.DataFrame | None]:
    """Scenario names listed in ``path`` and, for a demands file (YAML, or a
    CSV with demand columns beside ``scenario``), the custom demands it
    describes (else None). A missing, empty, binary or directory path is
    one CapprofError line."""
    from capprof.tagging.catalog import load_catalog
    from capprof.tagging.demands import load_custom_demands

    path = Path(path)
    if not path.exists():
        raise CapprofError(f"scenarios file {path} does not exist; check the path")
    if path.is_dir():
        raise CapprofError(f"scenarios file {path} is a directory; give a file of scenario names or demands")
    raw = path.read_bytes()
    if not raw.strip():
        raise CapprofError(f"scenarios file {path} is empty; list one scenario per line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise CapprofError(f"scenarios file {path} is not UTF-8 text (binary?); give scenario names one per "
                           "line, a CSV with a `scenario` column, or a demands YAML")
    suffix = path.suffix.lower()
    described = suffix in (".yaml", ".yml")
    if suffix == ".csv":
        header = read_csv(path, "check the file", nrows=0).columns
        if "scenario" not in header:
            raise CapprofError(f"{path}: missing the `scenario` column")
        described = any(c not in ("scenario", "substrate") for c in header)
    if described:
        custom = load_custom_demands(path, load_catalog())
        return list(custom.index), custom
    if suffix == ".csv":
        names = read_csv(path, "check the file", dtype=str)["scenario"].dropna().str.strip().tolist()
    else:
        names = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not names:
        raise CapprofError(f"{path}: names no scenario; list one scenario per line")
    return names, None


def _own_scenarios(names) -> pd.DataFrame:
    """Demands of the names that are capprof's own scenarios (the rest left out)."""
    from capprof.runners.scenarios.scenarios import get_scenario, own_scenario_demands

    known = []
    for name in names:
        try:
            get_scenario(name)
        except CapprofError:
            if ":" in name:  # a declarative variant with a bad key or value: its own line names the fix
                raise
            continue
        known.append(name)
    return own_scenario_demands(known) if known else pd.DataFrame()


CONTRAST_COLUMNS = ("team", "ability", "lead", "lead_low", "lead_high", "hdi_prob", "n_others", "clear")


def team_contrasts(idata, hdi_prob: float = 0.9, informed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Where each team stands out, as a posterior contrast.

    For team t and ability a, per posterior draw s:
    ``lead[s] = ability[s, t, a] - mean over teams u != t of ability[s, u, a]``,
    the mean taken over the other teams ``informed`` about a (``informed``:
    a team x ability table of booleans, e.g. the ``cells > 0`` of the
    abilities summary: a team no cell informs is its prior, compared with
    nobody and left out; None: every team). Returns CONTRAST_COLUMNS: lead
    (posterior mean of ``lead``), lead_low, lead_high (its ``hdi_prob``
    highest density interval, ArviZ), hdi_prob, n_others (the teams compared
    with) and clear (the interval excludes 0); one row per informed (team,
    ability) with at least one informed other team."""
    import arviz as az
    import numpy as np

    ability = idata.posterior["ability"].transpose("chain", "draw", "team", "demand")
    teams, demands = list(ability.coords["team"].values), list(ability.coords["demand"].values)
    mask = (np.ones((len(teams), len(demands)), dtype=bool) if informed is None
            else informed.reindex(index=teams, columns=demands).fillna(False).to_numpy(dtype=bool))
    values = ability.values
    n_others = mask.sum(axis=0, keepdims=True) - mask  # informed teams other than t, per ability
    total = (values * mask).sum(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        lead = values - (total - values * mask) / n_others
    keep = mask & (n_others > 0)
    team_index, demand_index = np.nonzero(keep)
    if not len(team_index):
        return pd.DataFrame(columns=list(CONTRAST_COLUMNS))
    chosen = lead[:, :, team_index, demand_index]
    interval = np.asarray(az.hdi(chosen, hdi_prob=hdi_prob))
    frame = pd.DataFrame({"team": [teams[i] for i in team_index], "ability": [demands[j] for j in demand_index],
                          "lead": chosen.mean(axis=(0, 1)), "lead_low": interval[:, 0], "lead_high": interval[:, 1],
                          "hdi_prob": hdi_prob, "n_others": n_others[0, demand_index].astype(int)})
    frame["clear"] = (frame["lead_low"] > 0) | (frame["lead_high"] < 0)
    return frame[list(CONTRAST_COLUMNS)]
