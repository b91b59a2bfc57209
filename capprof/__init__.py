"""capprof: what multi-agent RL populations are good at, on Melting Pot.

Data flows tagging -> runners -> profiling -> reports; each stage is a
subpackage (``capprof.tagging`` ...) and the CLI (``capprof.cli``) is the
front door. The public API re-exported here is the stable surface.
"""

import os

# meltingpot imports tensorflow; keep its C++ start-up chatter out of our output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from capprof.errors import CapprofError  # noqa: E402
from capprof.scores import SCORE_COLUMNS, load_scores, validate_scores  # noqa: E402

__version__ = "0.1.0"

__all__ = ["CapprofError", "SCORE_COLUMNS", "load_scores", "validate_scores", "__version__"]
