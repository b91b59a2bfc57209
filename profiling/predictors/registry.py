"""Every predictor by name: ``PREDICTORS``, the ``capprof.registry.Registry``
that each ``Predictor`` subclass with a ``name`` joins when it is defined
(``base.Predictor.__init_subclass__``), and the command-line model specs.
Importing ``capprof.profiling.predictors`` imports every model module.
"""

from __future__ import annotations

import inspect
import re
import types
from dataclasses import dataclass
from typing import Sequence

from capprof.errors import CapprofError, did_you_mean
from capprof.profiling.predictors.base import PREDICTORS, Predictor

ALIASES: dict[str, str] = PREDICTORS.aliases


def predictor_names() -> list[str]:
    """The registered names (aliases not included), in registration order."""
    return PREDICTORS.names()


def canonical_name(name: str) -> str:
    """``name`` itself, or the predictor an alias stands for; unknown names
    are one CapprofError line suggesting the closest."""
    return PREDICTORS.canonical(name)


def predictor_class(name: str) -> type[Predictor]:
    return PREDICTORS.lookup(name)


def make_predictor(name: str, **params) -> Predictor:
    """A fresh predictor by name; parameters its ``__init__`` does not take
    are ignored (so one call can pass draws/tune/seed to every model)."""
    cls = predictor_class(name)
    accepted = set(cls.param_names())
    return cls(**{k: v for k, v in params.items() if k in accepted})


# ------------------------------------------------------------------ model specs


@dataclass(frozen=True)
class ModelSpec:
    """One model as the command line names it: ``name`` (canonical, aliases
    resolved), ``params`` (parameter, value) pairs given in parentheses, and
    ``label``, the name the result tables use: the bare name without
    parameters, else ``name(key=value,...)`` as written, so two variants of
    one model can be compared in one run."""

    name: str
    params: tuple[tuple[str, object], ...] = ()

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({','.join(f'{k}={_format_value(v)}' for k, v in self.params)})"

    @property
    def kwargs(self) -> dict:
        return dict(self.params)

    def make(self, **defaults) -> Predictor:
        """A fresh predictor: ``defaults`` (dropped where ``__init__`` does not
        take them, like ``make_predictor``) overridden by the spec's own
        parameters."""
        return make_predictor(self.name, **{**defaults, **self.kwargs})


_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)
_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text",
               type(None): "none"}


def _format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # alpha=1000 stays 1000 in the label, not 1000.0
    return str(value)


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside parentheses (``a(x=1,y=2),b`` -> two parts);
    unbalanced parentheses are one line naming the text."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                break
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise CapprofError(f'--models "{text}" has unbalanced parentheses; write NAME(KEY=VALUE,...), '
                           'e.g. layout-joint(draws=500)')
    parts.append(text[start:])
    return parts


def _literal(text: str):
    """A parameter value as typed: true/false -> bool, none -> None, whole
    numbers -> int, other numbers -> float, anything else (quotes optional)
    -> str."""
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
        return stripped[1:-1]
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(stripped)
        except ValueError:
            pass
    return stripped


def _accepted_kinds(cls: type[Predictor], param: str) -> tuple[type, ...]:
    """The value types ``param`` of ``cls.__init__`` takes, from its
    annotation (``float | None`` -> float, None), else its default's type."""
    import typing

    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that does not resolve: fall back to the default
        hints = {}
    hint = hints.get(param)
    if hint is not None:
        args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        kinds = tuple(a for a in args if a in _KIND_WORDS)
        if kinds:
            return kinds
    default = inspect.signature(cls.__init__).parameters[param].default
    if default is inspect.Parameter.empty:
        return (str,)
    return (type(default),) if type(default) in _KIND_WORDS else (str,)


def _coerce(spec_text: str, cls: type[Predictor], param: str, raw: str):
    """The typed value of ``param=raw``, or one CapprofError line naming the
    bad value and the type (and allowed choices) it needs."""
    value = _literal(raw)
    kinds = _accepted_kinds(cls, param)
    if value is None and type(None) in kinds:
        return None
    if isinstance(value, bool):
        ok = bool in kinds
    elif isinstance(value, int):
        ok = int in kinds or float in kinds
        if ok and int not in kinds:
            value = float(value)
    elif isinstance(value, float):
        ok = float in kinds
    else:
        ok = False
    if not ok and str in kinds and value is not None:
        value, ok = raw.strip().strip("'\""), True
    if not ok:
        wanted = " or ".join(_KIND_WORDS[k] for k in kinds)
        raise CapprofError(f'{spec_text}: {param} takes {wanted}{_default_text(cls, param)}, '
                           f'got "{raw.strip()}"')
    try:
        cls.check_param(param, value, raw.strip())
    except CapprofError as error:
        raise CapprofError(f"{spec_text}: {error}") from None
    return value


def _default_text(cls: type[Predictor], param: str) -> str:
    default = inspect.signature(cls.__init__).parameters[param].default
    return "" if default is inspect.Parameter.empty else f" (default {_format_value(default)})"


def parse_model_spec(text: str, allowed: Sequence[str] | None = None) -> ModelSpec:
    """``NAME`` or ``NAME(KEY=VALUE,...)`` as a ``ModelSpec``. KEY must be a
    parameter of the predictor's ``__init__`` (and in ``allowed`` when given);
    VALUE is read as true/false, none, a whole number, a number or text and
    must fit the parameter's type. Every problem is one CapprofError line:
    an unknown model or parameter (with the allowed ones listed), or a bad
    value (with the type it needs)."""
    match = _SPEC.match(text)
    if not match:
        raise CapprofError(f'--models "{text.strip()}" is not NAME or NAME(KEY=VALUE,...); '
                           'e.g. layout-joint(scenario_effect=false,draws=500)')
    name = canonical_name(match.group(1))
    cls = PREDICTORS[name]
    body = match.group(2)
    if body is None or not body.strip():
        return ModelSpec(name)
    names = [p for p in cls.param_names() if allowed is None or p in allowed]
    spec_text = text.strip()
    params: dict[str, object] = {}
    for item in _split_top_level(body):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise CapprofError(f'{spec_text}: "{item.strip()}" is not KEY=VALUE; {name} takes '
                               f'{", ".join(names) or "no parameters"}')
        if key not in names:
            where = "" if allowed is None or key not in cls.param_names() else " here"
            raise CapprofError(f'{spec_text}: unknown parameter "{key}"{where}{did_you_mean(key, names)}; '
                               f'{name} takes {", ".join(names) or "no parameters"}')
        if key in params:
            raise CapprofError(f'{spec_text}: parameter "{key}" is given twice; give it once')
        params[key] = _coerce(spec_text, cls, key, raw)
    return ModelSpec(name, tuple(params.items()))


def parse_model_list(text: str, allowed: Sequence[str] | None = None) -> list[ModelSpec]:
    """A comma-separated list of model specs (commas inside parentheses
    belong to the spec), each label once, in order."""
    specs = [parse_model_spec(part, allowed) for part in _split_top_level(text) if part.strip()]
    if not specs:
        raise CapprofError("--models is empty; name at least one model")
    return list({s.label: s for s in specs}.values())
