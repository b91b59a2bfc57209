"""Who plays: population specs and the members they name (built-in policies,
RLlib checkpoints, contest submissions, members in other Python venvs through
the bridge, the populations capprof ships)."""
