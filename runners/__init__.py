"""Run focal populations on Melting Pot scenarios and collect per-episode returns."""
