"""Names and thresholds the profiling stage shares (one place each)."""

# The `team` value of a row pooling every test cell (evaluate's tables).
POOLED_TEAM = "ALL"
# Largest split-R-hat at which a fit counts as converged (Vehtari et al. 2021).
RHAT_MAX = 1.01
# The measurement layout's two modes (docs/layout.md) and the default.
LAYOUT_MODES = ("joint", "per-team")
DEFAULT_LAYOUT_MODE = "joint"
# Probability of the predictive intervals models report (low, high).
INTERVAL_LEVEL = 0.9
# Columns of every predictor's `predict` output, in order.
PREDICTION_COLUMNS = ("team", "scenario", "predicted", "low", "high")
# Columns `capprof predict` prints: the above plus the model name.
PREDICT_OUTPUT_COLUMNS = ("team", "scenario", "model", "predicted", "low", "high")
