"""Every predictor by name, found automatically.

A predictor is a ``Predictor`` subclass that sets ``name``, defined in any
module of this package: importing the package imports every module in it,
so adding a model is one new file and nothing else.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from capprof.errors import CapprofError, did_you_mean
from capprof.profiling.predictors.base import Predictor

_PACKAGE = __name__.rsplit(".", 1)[0]
PREDICTORS: dict[str, type[Predictor]] = {}
ALIASES: dict[str, str] = {}


def _discover() -> None:
    package = importlib.import_module(_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in ("base", "registry"):
            importlib.import_module(f"{_PACKAGE}.{info.name}")
    pending = list(Predictor.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending.extend(cls.__subclasses__())
        name = cls.__dict__.get("name")
        if not name or inspect.isabstract(cls):
            continue
        if name in PREDICTORS and PREDICTORS[name] is not cls:
            raise RuntimeError(f"two predictors are named {name!r}: {PREDICTORS[name]} and {cls}")
        PREDICTORS[name] = cls
        for alias in cls.__dict__.get("aliases", ()):
            ALIASES[alias] = name


def predictor_names() -> list[str]:
    """The registered names (aliases not included), in registration order."""
    return list(PREDICTORS)


def canonical_name(name: str) -> str:
    """``name`` itself, or the predictor an alias stands for; unknown names
    are one CapprofError line suggesting the closest."""
    if name in PREDICTORS:
        return name
    if name in ALIASES:
        return ALIASES[name]
    known = [*PREDICTORS, *ALIASES]
    raise CapprofError(
        f'unknown model "{name}"{did_you_mean(name, known)}; use any of {", ".join(predictor_names())}'
    )


def predictor_class(name: str) -> type[Predictor]:
    return PREDICTORS[canonical_name(name)]


def make_predictor(name: str, **params) -> Predictor:
    """A fresh predictor by name; parameters its ``__init__`` does not take
    are ignored (so one call can pass draws/tune/seed to every model)."""
    cls = predictor_class(name)
    accepted = set(cls.param_names())
    return cls(**{k: v for k, v in params.items() if k in accepted})
