"""Scenario demands: the catalog of Melting Pot scenarios and demand matrices."""

from capprof.tagging.catalog import load_catalog
from capprof.tagging.demands import demand_matrix, load_custom_demands

__all__ = ["load_catalog", "demand_matrix", "load_custom_demands"]
