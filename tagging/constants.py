"""Names the tagging stage shares with every other stage (one place each)."""

# A scenario's mode from its focal / background counts (contest report, 2.3).
MODES = ("resident", "visitor", "none")
# The modes that are demands (a `none` scenario demands neither).
MODE_DEMANDS = ("resident", "visitor")
# The named tag sets of `--tags` (anything else is a comma-separated list).
TAG_SETS = ("all", "contest")
# The groups a demand column belongs to (`demand_groups`), in display order.
DEMAND_GROUPS = ("substrate", "mode", "behaviour")
