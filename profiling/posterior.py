"""Reading a layout posterior (ArviZ InferenceData): draws of a variable and
the model data ``layout.build_layout_model`` keeps in ``constant_data``.
Shared by the predictions (``layout``) and the checks (``checks``)."""

from __future__ import annotations

import numpy as np


def has_cells(idata) -> bool:
    """True when the posterior carries the fitted cells (``constant_data``)."""
    return hasattr(idata, "constant_data") and "cell_score" in idata.constant_data


def scalar(value) -> float:
    """A 0-d (or one-element) data variable as a float."""
    return float(np.asarray(value).reshape(-1)[0])


def draws_of(idata, name, dims=()):
    """Posterior draws of ``name`` stacked over (chain, draw) first, then
    ``dims`` in that order, as an array; None when the posterior lacks it."""
    if name not in idata.posterior:
        return None
    values = idata.posterior[name].stack(sample=("chain", "draw"))
    return values.transpose("sample", *dims).to_numpy()
