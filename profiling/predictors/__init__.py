"""Score predictors: one contract (``base.Predictor``) and one registry.

``PREDICTORS`` maps each name to its class; ``make_predictor(name, **params)``
builds one. Every model module of this package is imported here; a new model is
a new file defining a ``Predictor`` subclass with a ``name``, imported here.
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

# every model module, imported so its predictors register (a new model is a
# new module here and its import line)
from capprof.profiling.predictors.additive import AdditiveTeamScenario  # noqa: E402
from capprof.profiling.predictors.aggmean import AggMean  # noqa: E402
from capprof.profiling.predictors.assessor import Assessor  # noqa: E402
from capprof.profiling.predictors.layout import MeasurementLayout  # noqa: E402
from capprof.profiling.predictors import lltm, lowrank  # noqa: E402,F401
from capprof.profiling.predictors.ridge import DemandRidge  # noqa: E402

__all__ = [
    "ALIASES", "PREDICTORS", "ModelSpec", "AdditiveTeamScenario", "AggMean", "Assessor", "DemandRidge", "MeasurementLayout",
    "Predictor", "canonical_name", "cell_means", "make_predictor", "parse_model_list", "parse_model_spec", "predictor_class", "predictor_names",
    "prediction_frame", "team_demand_design",
]
