"""Score predictors: one contract (``base.Predictor``) and one registry.

``PREDICTORS`` maps each name to its class; ``make_predictor(name, **params)``
builds one. Every module of this package is imported here, so a new model
is one new file defining a ``Predictor`` subclass with a ``name``.
"""

from capprof.profiling.predictors.base import (
    Predictor,
    cell_means,
    prediction_frame,
    team_demand_design,
)
from capprof.profiling.predictors.registry import (
    ALIASES,
    PREDICTORS,
    ModelSpec,
    canonical_name,
    parse_model_list,
    parse_model_spec,
    make_predictor,
    predictor_class,
    predictor_names,
)

from capprof.profiling.predictors.registry import _discover

_discover()
del _discover

# the models by class name, for Python users
from capprof.profiling.predictors.additive import AdditiveTeamScenario  # noqa: E402
from capprof.profiling.predictors.aggmean import AggMean  # noqa: E402
from capprof.profiling.predictors.assessor import Assessor  # noqa: E402
from capprof.profiling.predictors.layout import MeasurementLayout  # noqa: E402
from capprof.profiling.predictors.ridge import DemandRidge  # noqa: E402

__all__ = [
    "ALIASES", "PREDICTORS", "ModelSpec", "AdditiveTeamScenario", "AggMean", "Assessor", "DemandRidge", "MeasurementLayout",
    "Predictor", "canonical_name", "cell_means", "make_predictor", "parse_model_list", "parse_model_spec", "predictor_class", "predictor_names",
    "prediction_frame", "team_demand_design",
]
