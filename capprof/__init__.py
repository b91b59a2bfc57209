"""capprof: what multi-agent RL populations are good at, on Melting Pot.

Data flows tagging -> runners -> profiling -> reports; each stage is a
subpackage (``capprof.tagging`` ...) and the CLI (``capprof.cli``) is the
front door. The public API re-exported here is the stable surface.

Importing capprof changes nothing outside it (no environment variables, no
warning filters, no plotting backend): TensorFlow's log level is set where
meltingpot is imported (``capprof.meltingpot_import``) and in the
environment of the member interpreters capprof starts.
"""

from capprof.errors import CapprofError
from capprof.scores import SCORE_COLUMNS, load_scores, validate_scores

__version__ = "0.1.0"

__all__ = ["CapprofError", "SCORE_COLUMNS", "load_scores", "validate_scores", "__version__"]
