"""Names the tagging stage shares with every other stage (one place each)."""

# A scenario's mode from its focal / background counts (contest report, 2.3).
MODES = ("resident", "visitor", "none")
# The modes that are demands (a `none` scenario demands neither).
MODE_DEMANDS = ("resident", "visitor")
# The named tag sets of `--tags` (anything else is a comma-separated list).
TAG_SETS = ("all", "contest")
# The groups a demand column belongs to (`demand_groups`), in display order.
DEMAND_GROUPS = ("substrate", "family", "mode", "behaviour")
# Substrate families (``substrate_families``): a substrate's game is its name
# before "__" (chemistry__two_metabolic_cycles -> chemistry); the matrix games
# (``*_in_the_matrix__*``) also share this family, their common mechanics.
FAMILY_SEPARATOR = "__"
# The groups that say where a scenario is played, not what it demands of a
# team's behaviour: the report's strengths and the demo's top abilities
# leave them out (a substrate or family ability mostly says how it is scored).
SETTING_GROUPS = ("substrate", "family")
MATRIX_GAMES = "in_the_matrix"
