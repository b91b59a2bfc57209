"""``capprof train``: PPO populations trained with RLlib (the environment,
the training loop, the training directory's files, the command)."""
