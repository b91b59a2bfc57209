"""Running many episodes: the plan, serial, isolated (one process per
episode) or Ray execution, the results directory's lock and files."""
