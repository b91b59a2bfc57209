"""The one contract every score predictor follows (docs/evaluation.md).

A predictor is shaped like a scikit-learn estimator:

* a scikit-learn ``BaseEstimator``: parameters in ``__init__`` only, stored
  under their own names, so ``get_params()``, ``set_params()``, ``repr`` and
  ``sklearn.base.clone`` (``clone()``) work for every model;
* ``fit(scores, demands) -> self``: ``scores`` is a normalised score table
  (capprof.scores schema, one row per replicate); ``demands`` is a demand
  matrix (capprof.tagging.demands.demand_matrix) covering at least the
  scenarios in ``scores``;
* ``predict(teams, scenarios, demands=None)``: teams and scenarios are
  equal-length sequences naming (team, scenario) pairs; returns a DataFrame
  with ``PREDICTION_COLUMNS``: team, scenario, predicted (the expected mean
  normalised score of that cell), low, high (a predictive interval of
  probability ``interval_level``; NaN for models without one). ``demands``
  describes scenarios not given at fit time;
* learned state lives in attributes ending in ``_``;
* ``save(directory)`` / ``Predictor.load(directory)``: ``predictor.json``
  (name, parameters, teams, fitted demand rows, small learned state) plus
  any files the model needs (``_save_files``/``_load_files``).

Class attributes: ``name`` (the registry key; a subclass that sets it is
picked up by ``capprof.profiling.predictors.PREDICTORS`` unless defined
with ``register=False``), ``aliases``
(other accepted names), ``has_intervals``, ``interval_level``,
``is_bayesian`` (exposes ``posterior_`` and ``diagnostics_``),
``needs_demands``.

All predictors model the per-(team, scenario) mean over replicates: that
is what evaluation scores, and it gives every model the same unit of data.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.base import clone as sklearn_clone

from capprof.arguments import SEED_MAX
from capprof.errors import CapprofError, did_you_mean
from capprof.profiling.constants import PREDICTION_COLUMNS
from capprof.profiling.files import write_json_atomic
from capprof.readers import read_json
from capprof.registry import Registry

STATE_FILE = "predictor.json"

# every predictor by name: a subclass that sets ``name`` registers itself
# (with its ``aliases``) when it is defined
PREDICTORS = Registry("model")


def _number(value) -> str:
    """A bound as a message shows it: whole numbers in full, others short."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def cell_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean score per (team, scenario): columns team, scenario, score, n
    (number of replicates averaged)."""
    grouped = scores.groupby(["team", "scenario"], sort=True)["score"]
    return grouped.agg(score="mean", n="size").reset_index()


def prediction_frame(teams, scenarios, predicted, low=None, high=None) -> pd.DataFrame:
    """The ``predict`` output: ``PREDICTION_COLUMNS``, low/high NaN when not given."""
    n = len(predicted)
    columns = dict(zip(PREDICTION_COLUMNS, (
        list(teams),
        list(scenarios),
        np.asarray(predicted, dtype=float),
        np.full(n, np.nan) if low is None else np.asarray(low, dtype=float),
        np.full(n, np.nan) if high is None else np.asarray(high, dtype=float),
    )))
    return pd.DataFrame(columns)


def team_demand_design(teams: Sequence[str], all_teams: Sequence[str], demand_rows: pd.DataFrame,
                       interactions: bool) -> np.ndarray:
    """Feature matrix: team one-hot, scenario demands, and (with
    ``interactions``) team one-hot x demands, so each team gets its own slope
    per demand."""
    codes = pd.Index(list(all_teams)).get_indexer(list(teams))
    onehot = np.zeros((len(codes), len(all_teams)))
    onehot[np.arange(len(codes)), codes] = 1.0
    levels = demand_rows.to_numpy(dtype=float)
    parts = [onehot, levels]
    if interactions:
        parts.append((onehot[:, :, None] * levels[:, None, :]).reshape(len(codes), -1))
    return np.hstack(parts)


class Predictor(BaseEstimator):
    """Shared checks and persistence; subclasses implement ``_fit(cells)``
    and ``_predict(teams, scenarios, demands)`` (and, when their learned
    state is more than small JSON, ``_save_files``/``_load_files``)."""

    name: ClassVar[str | None] = None
    aliases: ClassVar[tuple[str, ...]] = ()
    has_intervals: ClassVar[bool] = False
    interval_level: ClassVar[float | None] = None
    is_bayesian: ClassVar[bool] = False
    needs_demands: ClassVar[bool] = True
    # checks of parameter values beyond their type, on the command line
    # (``registry.parse_model_spec``) and at ``fit``: allowed choices, smallest values, values a number must
    # exceed (a rate or a scale that 0 makes meaningless), largest values
    param_choices: ClassVar[dict[str, tuple]] = {}
    param_minimums: ClassVar[dict[str, float]] = {}
    param_above: ClassVar[dict[str, float]] = {}
    param_maximums: ClassVar[dict[str, float]] = {}
    # parameters that still matter after fitting (``capprof predict --models``)
    predict_params: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, register: bool = True, **kwargs):
        # ``class Mine(Predictor, register=False)`` keeps a named class out of
        # the registry until ``PREDICTORS.register(Mine)`` (tests, experiments)
        super().__init_subclass__(**kwargs)
        if register and cls.__dict__.get("name") and not inspect.isabstract(cls):
            PREDICTORS.register(cls, aliases=cls.__dict__.get("aliases", ()))

    # ------------------------------------------------------------ parameters
    # get_params, set_params and __repr__ come from scikit-learn's BaseEstimator

    @classmethod
    def param_names(cls) -> list[str]:
        """The parameters of ``__init__`` in signature order (the order the
        command-line texts list them; ``get_params`` holds the same names)."""
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values()
                if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    @classmethod
    def check_param(cls, param: str, value, written: str | None = None) -> None:
        """One CapprofError line when ``value`` is outside what ``param``
        allows (``param_choices``, ``param_minimums``, ``param_above``,
        ``param_maximums``); None passes (a parameter's "not set").
        ``written``: the value as the user typed it, for the message."""
        if value is None or isinstance(value, bool):
            return
        shown = written if written is not None else str(value)
        choices = cls.param_choices.get(param)
        if choices is not None:
            if value not in choices:
                raise CapprofError(f'{param}={shown} is not one of {", ".join(map(str, choices))}'
                                   f'{did_you_mean(str(value), choices)}')
            return
        if not isinstance(value, (int, float)):
            return
        if not math.isfinite(value):
            raise CapprofError(f"{param}={shown} is not a finite number; give a number")
        minimum, above, maximum = (cls.param_minimums.get(param), cls.param_above.get(param),
                                   cls.param_maximums.get(param))
        if param == "seed":  # every model's seed: the range the command line's --seed takes
            minimum, maximum = 0, SEED_MAX
        if minimum is not None and value < minimum:
            raise CapprofError(f"{param}={shown} is below {_number(minimum)}; give {param} >= {_number(minimum)}")
        if above is not None and value <= above:
            raise CapprofError(f"{param}={shown} must be above {_number(above)}; give {param} > {_number(above)}")
        if maximum is not None and value > maximum:
            raise CapprofError(f"{param}={shown} is above {_number(maximum)}; give {param} <= {_number(maximum)}")

    def _check_params(self) -> None:
        for param, value in self.get_params().items():
            try:
                self.check_param(param, value)
            except CapprofError as error:
                raise CapprofError(f"{self.name}: {error}") from None

    def clone(self) -> "Predictor":
        """An unfitted copy with the same parameters (``sklearn.base.clone``)."""
        return sklearn_clone(self)

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "teams_")

    # ------------------------------------------------------------ fit / predict

    def fit(self, scores: pd.DataFrame, demands: pd.DataFrame | None = None) -> "Predictor":
        self._check_params()
        if len(scores) == 0:
            raise CapprofError("no training scores to fit; check the split or the score table")
        if demands is None and self.needs_demands:
            raise CapprofError(f"{self.name}: needs demands; pass a demand matrix to fit")
        if demands is not None:
            missing = sorted(set(scores["scenario"]) - set(demands.index))
            if missing:
                raise CapprofError(
                    f'{len(missing)} scored scenario(s) have no demands, e.g. "{missing[0]}"; '
                    "describe them with --demands FILE (docs/demands.md)"
                )
        self.teams_ = sorted(scores["team"].unique())
        self.demands_ = None if demands is None else demands.astype(float)
        start = time.perf_counter()
        self._fit(cell_means(scores))
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def predict(self, teams: Sequence[str], scenarios: Sequence[str],
                demands: pd.DataFrame | None = None) -> pd.DataFrame:
        if not self.is_fitted:
            raise CapprofError(f"{self.name}: call fit before predict")
        teams, scenarios = list(teams), list(scenarios)
        if len(teams) != len(scenarios):
            raise CapprofError("predict needs one team per scenario (equal-length lists)")
        unknown = sorted(set(teams) - set(self.teams_))
        if unknown:
            raise CapprofError(
                f'team "{unknown[0]}" was not in the training scores{did_you_mean(unknown[0], self.teams_)}; '
                "predictions exist only for fitted teams"
            )
        return self._predict(teams, scenarios, demands)

    def _fit(self, cells: pd.DataFrame) -> None:
        raise NotImplementedError

    def _predict(self, teams: list[str], scenarios: list[str], demands: pd.DataFrame | None) -> pd.DataFrame:
        raise NotImplementedError

    def _demands_for(self, scenarios: Sequence[str], demands: pd.DataFrame | None) -> pd.DataFrame:
        """Demand rows of ``scenarios`` in the fitted column order: rows given
        in ``demands`` first, then the fitted ones. Columns the fitted model
        never saw must be zero: it has nothing to say about them."""
        table = self.demands_ if demands is None else demands
        if table is None:
            raise CapprofError(f"{self.name}: needs demands; pass a demand matrix to fit")
        if demands is not None and self.demands_ is not None:
            known = self.demands_.drop(index=[s for s in demands.index if s in self.demands_.index])
            table = pd.concat([known, demands.reindex(columns=self.demands_.columns.union(demands.columns))])
        missing = [s for s in dict.fromkeys(scenarios) if s not in table.index]
        if missing:
            raise CapprofError(
                f'scenario "{missing[0]}" has no demands ({len(missing)} such); describe it in a demands file'
            )
        rows = table.loc[list(scenarios)].fillna(0.0)
        extra = [c for c in rows.columns if c not in self.demands_.columns and (rows[c] != 0).any()]
        if extra:
            # a substrate family is derived from the substrate, not given: a fit
            # that had none of it (one substrate of the family seen) knows the
            # family only through its substrate columns, and so predicts without it
            from capprof.tagging.constants import DEMAND_GROUPS
            from capprof.tagging.demands import demand_groups

            _, family_group, _, _ = DEMAND_GROUPS
            groups = demand_groups(extra)
            extra = [c for c in extra if groups[c] != family_group]
        if extra:
            raise CapprofError(
                f'demand "{extra[0]}" was not part of the fitted model ({len(extra)} such); '
                "refit with it, or drop it from the scenarios to predict"
            )
        return rows.reindex(columns=self.demands_.columns, fill_value=0.0)

    def _cell_arrays(self, cells: pd.DataFrame):
        """The training cells as arrays for the demand models fitted by
        optimisation: sets ``scenarios_`` (sorted) and returns ``(levels,
        team, scenario, y)``: the (S, D) demand levels of the fitted scenarios,
        each cell's team and scenario position, and its score clipped to [0, 1]."""
        self.scenarios_ = sorted(cells["scenario"].unique())
        levels = self._demands_for(self.scenarios_, None).to_numpy(dtype=float)
        team = pd.Index(self.teams_).get_indexer(cells["team"])
        scenario = pd.Index(self.scenarios_).get_indexer(cells["scenario"])
        y = np.clip(cells["score"].to_numpy(dtype=float), 0.0, 1.0)
        return levels, team, scenario, y

    # ------------------------------------------------------------ persistence

    def _state(self) -> dict:
        """Small learned state as JSON-able values (``save``)."""
        return {}

    def _restore(self, state: dict) -> None:
        """Inverse of ``_state`` (``load``)."""

    def _save_files(self, directory: Path) -> None:
        """Write learned state too large for JSON into ``directory``."""

    def _load_files(self, directory: Path) -> None:
        """Read what ``_save_files`` wrote."""

    def save(self, directory) -> Path:
        """Write the fitted predictor to ``directory`` (created if needed):
        the model's own files first, ``predictor.json`` last, so a directory
        with a ``predictor.json`` holds a whole predictor."""
        if not self.is_fitted:
            raise CapprofError(f"{self.name}: call fit before save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_files(directory)
        demands = None if self.demands_ is None else json.loads(self.demands_.to_json(orient="split"))
        write_json_atomic(directory / STATE_FILE, {
            "name": self.name, "params": self.get_params(), "teams": list(self.teams_),
            "demands": demands, "state": self._state(),
        })
        return directory

    @classmethod
    def load(cls, directory) -> "Predictor":
        """A fitted predictor from a directory written by ``save`` (the class
        named in its ``predictor.json``, which must be ``cls`` or a subclass)."""
        directory = Path(directory)
        fix = "save the fitted predictor again (Predictor.save)"
        document = read_json(directory / STATE_FILE, fix)
        try:
            name = document["name"]
            target = PREDICTORS.get(name)
            if target is None:
                raise CapprofError(f'{directory / STATE_FILE} names the model "{name}", which this capprof '
                                   f"does not have; {fix}")
            if not issubclass(target, cls):
                raise CapprofError(f'{directory} holds a "{target.name}" predictor, not a {cls.__name__}')
            predictor = target(**document["params"])
            predictor._restore_fitted(document["teams"], document["demands"])
            predictor._restore(document["state"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CapprofError(f"{directory / STATE_FILE} is incomplete ({exc}); {fix}") from None
        predictor._load_files(directory)
        return predictor

    def _restore_fitted(self, teams: Sequence[str], demands) -> None:
        """Set the fitted teams and demand rows (``load`` and the artifact loaders)."""
        self.teams_ = [str(t) for t in teams]
        if demands is None:
            self.demands_ = None
        elif isinstance(demands, pd.DataFrame):
            self.demands_ = demands.astype(float)
        else:
            frame = pd.DataFrame(demands["data"], index=demands["index"], columns=demands["columns"], dtype=float)
            frame.index.name = "scenario"
            self.demands_ = frame

