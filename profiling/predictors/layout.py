"""The measurement layout as a predictor (the maths: profiling/layout.py,
likelihood.py and checks.py).

Two registered models, one per mode (docs/layout.md):

* ``layout-joint`` (alias ``layout``; what ``capprof profile`` fits by
  default): abilities partially pooled across teams;
* ``layout-per-team``: each team's abilities alone.

``MeasurementLayout(mode=...)`` is the layout of either mode (unregistered;
``layout_class(mode)`` names the registered class of a mode). The classes
hold no maths: they call ``build_layout_model``, ``sample_layout``,
``diagnostics``, ``ability_summary`` and ``predict_scores``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from capprof.errors import CapprofError
from capprof.profiling import checks, likelihood
from capprof.profiling import layout as maths
from capprof.profiling.constants import DEFAULT_LAYOUT_MODE, INTERVAL_LEVEL, LAYOUT_MODES
from capprof.profiling.predictors.base import Predictor, prediction_frame

POSTERIOR_FILE = "posterior.nc"


def layout_class(mode: str) -> type["MeasurementLayout"]:
    """The layout predictor class of ``mode`` (joint | per-team)."""
    for cls in (JointLayout, PerTeamLayout):
        if cls.mode == mode:
            return cls
    raise CapprofError(f'unknown layout mode "{mode}"; use {" or ".join(LAYOUT_MODES)}')


class MeasurementLayout(Predictor):
    """Capability profiles by Bayesian inference (profiling/layout.py).

    Parameters: ``mode`` (joint | per-team; fixed by a registered class,
    either given to ``MeasurementLayout`` itself), ``draws``/``tune``/
    ``chains`` for NUTS, ``squeeze`` (the eps of ``likelihood.squeeze``),
    ``scale`` (logistic slope per demand level; None: free), ``chance`` (the
    score that pure noise produces; 0), ``noise`` (mix in a chance component), ``scenario_effect`` (a residual
    difficulty per scenario; None, the default: on in joint mode, off in
    per-team mode), ``scenario_mean`` (its hierarchical mean from the
    scenario's tags and mode, which a new scenario borrows; else a new
    scenario draws it from a zero-mean prior), ``quadrature`` (points of the
    censored cells' incomplete beta): see ``layout.build_layout_model``;
    ``mass_matrix`` (diag | low-rank: nutpie's mass matrix adaptation) and
    ``backend`` (numba | jax: what nutpie compiles with) and ``target_accept``
    (NUTS's target acceptance rate; None: the sampler's own, 0.8 for nutpie,
    0.9 for pymc), ``layout.sample_layout``;
    ``interval`` (probability of the predictive
    interval), ``sampler`` (nutpie | pymc), ``seed``, ``progressbar`` (the
    sampler's own progress display; nutpie draws it on terminals only).

    Learned: ``posterior_`` (ArviZ InferenceData), ``diagnostics_`` (dict
    from ``checks.diagnostics``), ``teams_``, ``demands_``, ``fit_seconds_``.
    """

    mode: str = DEFAULT_LAYOUT_MODE
    has_intervals = True
    is_bayesian = True
    param_choices = {"mode": tuple(LAYOUT_MODES),
                     "sampler": ("nutpie", "pymc"), "mass_matrix": tuple(maths.MASS_MATRICES),
                     "backend": tuple(maths.BACKENDS)}
    param_minimums = {"draws": 10, "tune": 10, "chains": 1, "squeeze": 1e-6, "interval": 1e-6, "quadrature": 2,
                      "target_accept": 0.5}
    param_above = {"scale": 0.0}
    param_maximums = {"target_accept": 0.99, "interval": 0.999999, "squeeze": 0.49}
    # what `capprof predict` may change on a fitted layout (the rest is fixed at fit time)
    predict_params = ("interval", "seed")

    def __init__(self, mode: str | None = None, draws: int = 1000, tune: int = 500, chains: int = 2,
                 squeeze: float = 0.01, scale: float | None = 1.0, chance: float = 0.0,
                 noise: bool = True, scenario_effect: bool | None = None,
                 scenario_mean: bool = True, quadrature: int = 16, mass_matrix: str = "diag",
                 backend: str = "numba", target_accept: float | None = None,
                 interval: float = INTERVAL_LEVEL, sampler: str = "nutpie", seed: int = 0,
                 progressbar: bool = False):
        # a registered class has its mode; the base class takes either
        if mode is not None and type(self) is not MeasurementLayout and mode != type(self).mode:
            raise CapprofError(f'{self.name} has mode "{type(self).mode}", not "{mode}"; '
                               f"use {layout_class(mode).name}")
        self.mode = type(self).mode if mode is None else mode
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.squeeze = squeeze
        self.scale = scale
        self.chance = chance
        self.noise = noise
        self.scenario_effect = scenario_effect
        self.scenario_mean = scenario_mean
        self.quadrature = quadrature
        self.mass_matrix = mass_matrix
        self.backend = backend
        self.target_accept = target_accept
        self.interval = interval
        self.sampler = sampler
        self.seed = seed
        self.progressbar = progressbar

    @property
    def interval_level(self) -> float:  # type: ignore[override]
        return self.interval

    @property
    def uses_scenario_effect(self) -> bool:
        """``scenario_effect``, where None means on in joint mode (the default
        model, docs/evaluation.md) and off in per-team mode (where a residual
        shared by every team would tie the teams' fits together)."""
        return self.mode == "joint" if self.scenario_effect is None else bool(self.scenario_effect)

    def _fit(self, cells):
        from capprof.tagging.demands import demand_groups

        maths.check_unit_range(cells["score"])
        # Only scenarios with training cells enter the model. A scenario without
        # cells would still be tied to the others by the residual's centring
        # within its substrate (its residual becomes minus the sum of its
        # substrate's), so a held-out scenario would be predicted from that
        # artefact, and the fitted ones would lose their centring. Scenarios the
        # fit has not seen draw their residual at prediction time instead
        # (``layout.predict_scores``); their demand rows stay in ``demands_``.
        seen = set(cells["scenario"])
        demand_index = maths.DemandIndex.from_matrix(self.demands_[self.demands_.index.isin(seen)])
        team_codes = pd.Categorical(cells["team"], categories=self.teams_).codes.astype(int)
        scen_codes = pd.Categorical(cells["scenario"], categories=demand_index.scenarios).codes.astype(int)
        groups = demand_groups(self.demands_.columns)
        model = maths.build_layout_model(
            team_codes, scen_codes, likelihood.squeeze(cells["score"].to_numpy(), self.squeeze), demand_index,
            self.teams_, mode=self.mode, demand_groups=[groups[str(c)] for c in self.demands_.columns],
            scale=self.scale, chance=self.chance, squeeze=self.squeeze,
            noise=self.noise, scenario_effect=self.uses_scenario_effect, scenario_mean=self.scenario_mean,
            quadrature=self.quadrature,
        )
        self.posterior_ = maths.sample_layout(model, self.draws, self.tune, self.chains, self.seed, self.sampler,
                                              progressbar=self.progressbar, mass_matrix=self.mass_matrix,
                                              backend=self.backend, target_accept=self.target_accept)
        self.diagnostics_ = checks.diagnostics(self.posterior_)

    def _predict(self, teams, scenarios, demands):
        """Posterior predictive per (team, scenario) pair (``layout.predict_scores``)."""
        rows = self._demands_for(scenarios, demands)
        team_codes = pd.Index(self.teams_).get_indexer(teams)
        predicted, low, high = maths.predict_scores(
            self.posterior_, team_codes, rows.to_numpy(dtype=float), self.interval,
            scale=self.scale, chance=self.chance, squeeze_eps=self.squeeze, seed=self.seed, scenarios=scenarios)
        return prediction_frame(teams, scenarios, predicted, low, high)

    def abilities(self, hdi_prob: float = INTERVAL_LEVEL) -> pd.DataFrame:
        """Posterior summary per (team, ability): ``layout.ability_summary``."""
        return maths.ability_summary(self.posterior_, hdi_prob)

    # ------------------------------------------------------------ persistence

    @classmethod
    def from_posterior(cls, idata, demands: pd.DataFrame, diagnostics: dict | None = None,
                       **params) -> "MeasurementLayout":
        """A fitted layout from its posterior and the demand rows (or an empty
        frame with just the columns) it was fitted on. Called on
        ``MeasurementLayout`` itself, ``mode`` in ``params`` picks the
        registered class of that mode. ``diagnostics``: as saved at fit time
        (else computed again)."""
        if cls is MeasurementLayout:
            mode = params.pop("mode", None) or DEFAULT_LAYOUT_MODE
            cls = layout_class(mode)
        predictor = cls(**params)
        teams = [str(t) for t in idata.posterior["team"].values]
        columns = [str(d) for d in idata.posterior["demand"].values]
        if list(map(str, demands.columns)) != columns:
            raise CapprofError("the posterior's demands differ from the demand columns saved beside it; "
                               "fit the layout again")
        predictor._restore_fitted(teams, demands)
        predictor.posterior_ = idata
        predictor.diagnostics_ = dict(diagnostics) if diagnostics is not None else checks.diagnostics(idata)
        return predictor

    def save_posterior(self, path) -> None:
        """The posterior as NetCDF, written atomically (``capprof.io.atomic_path``:
        a temporary file beside it, fsynced and renamed into place)."""
        from capprof.io import atomic_path

        with atomic_path(Path(path)) as tmp:
            self.posterior_.to_netcdf(str(tmp))

    @staticmethod
    def read_posterior(path, fix: str = "fit the layout again"):
        """InferenceData from a NetCDF file, or one CapprofError line naming
        it and ``fix``."""
        import arviz as az

        path = Path(path)
        if not path.is_file():
            raise CapprofError(f"{path} is missing; {fix}")
        try:
            idata = az.from_netcdf(str(path))
        except Exception:  # netCDF4/h5py raise many types for a damaged file
            raise CapprofError(f"{path} is not a readable posterior (truncated?); {fix}") from None
        if "posterior" not in idata.groups() or "ability" not in idata.posterior:
            raise CapprofError(f"{path} holds no layout posterior; {fix}")
        return idata

    def _save_files(self, directory: Path) -> None:
        self.save_posterior(directory / POSTERIOR_FILE)

    def _load_files(self, directory: Path) -> None:
        self.posterior_ = self.read_posterior(directory / POSTERIOR_FILE)
        self.diagnostics_ = checks.diagnostics(self.posterior_)


class JointLayout(MeasurementLayout):
    """The layout with abilities partially pooled across teams."""

    name = "layout-joint"
    aliases = ("layout",)
    mode = "joint"


class PerTeamLayout(MeasurementLayout):
    """The layout fitted for each team alone (the paper's per-team models)."""

    name = "layout-per-team"
    mode = "per-team"
