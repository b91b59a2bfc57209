"""From a tidy score table to capability profiles and score predictions."""
