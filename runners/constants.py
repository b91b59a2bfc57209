"""Names the runners stage shares with the other stages (one place each)."""

# Scenario suites (`capprof scenarios --suite`, the `suite` column).
OFFICIAL, OFFLINE, VARIANTS = "official", "offline", "variants"
SUITES = (OFFICIAL, OFFLINE, VARIANTS)
# Suites whose scenarios are described by the run's own `_demands.yaml`.
CUSTOM_SUITES = (OFFLINE, VARIANTS)

# A background member naming one of meltingpot's bots: `bot:<name>`.
BOT_PREFIX = "bot:"

# An episode's `status`: `ok`, or why it produced no returns.
STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_INVALID_ACTION = "invalid_action"
STATUS_TIMEOUT = "timeout"
STATUS_MEMORY = "memory"
STATUSES = (STATUS_OK, STATUS_ERROR, STATUS_INVALID_ACTION, STATUS_TIMEOUT, STATUS_MEMORY)

# The safety study's depletion rule: steps without any collective reward.
DEPLETION_WINDOW = 50

# Files capprof keeps inside a results directory besides the episode files
# (underscore-prefixed: Parquet readers skip them).
LOCK_FILE = "_capprof_run.lock"

# `capprof run` exit code when every episode it played failed (bad input: 2).
EXIT_ALL_FAILED = 1
# `capprof run` exit code after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130
