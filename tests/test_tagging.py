"""The scenario catalog, tag sets and demand matrices."""

import json

import pytest

from capprof.errors import CapprofError
from capprof.tagging.catalog import (
    contest_heldout_scenarios,
    filter_catalog,
    load_catalog,
    mode_from_counts,
)
from capprof.tagging.demands import contest_tags, demand_groups, demand_matrix, resolve_tag_set, substrate_families


def test_catalog_has_every_meltingpot_2_4_1_scenario():
    catalog = load_catalog()
    assert len(catalog) == 312
    assert catalog["substrate"].nunique() >= 49
    assert set(catalog["meltingpot_version"]) == {"2.4.1"}
    row = catalog.loc["territory__rooms_2"]
    assert row["bots"] == ["noop_bot"] and not row["needs_assets"]
    assert catalog.loc["clean_up_7", "needs_assets"]


def test_counts_and_mode_agree_with_roles():
    catalog = load_catalog()
    for _, row in catalog.iterrows():
        assert row["n_focal"] + row["n_background"] == row["n_players"] == len(row["roles"])
        assert row["n_focal"] == sum(row["is_focal"])
        assert row["mode"] == mode_from_counts(row["n_focal"], row["n_background"])


def test_misspelt_meltingpot_tag_is_corrected_but_kept_raw():
    catalog = load_catalog()
    raw = {t for tags in catalog["raw_tags"] for t in tags}
    corrected = {t for tags in catalog["tags"] for t in tags}
    assert "parter_choice" in raw and "parter_choice" not in corrected
    assert len(raw) == 32 and len(corrected) == 31
    fixed = catalog[[("parter_choice" in r) for r in catalog["raw_tags"]]]
    assert all("partner_choice" in t for t in fixed["tags"])


def test_contest_tag_set_is_the_16_tags_of_the_held_out_scenarios():
    catalog = load_catalog()
    assert len(contest_heldout_scenarios(catalog)) == 50
    tags = contest_tags(catalog)
    assert len(tags) == 16
    assert {"resident", "visitor", "defense", "flexibility", "reciprocity", "convention_following"} <= set(tags)


def test_demand_matrix_one_hot_substrates_modes_and_tags():
    demands = demand_matrix(["clean_up_7", "territory__rooms_0"], tags="contest")
    assert demands.loc["clean_up_7", "clean_up"] == 1 and demands.loc["clean_up_7", "territory__rooms"] == 0
    assert demands.loc["clean_up_7", "visitor"] == 1 and demands.loc["territory__rooms_0", "resident"] == 1
    assert demands.loc["territory__rooms_0", "defense"] == 1
    assert demands.loc["clean_up_7", "reciprocity"] == 1
    # drop_unused keeps only demands some requested scenario has
    assert "allelopathic_harvest__open" not in demands.columns
    assert set(demands.columns) <= set(demand_matrix(tags="contest", drop_unused=False).columns)


def test_tag_set_choices():
    assert "ownership" in resolve_tag_set("all")
    assert "ownership" not in resolve_tag_set("contest")
    assert resolve_tag_set(["defense", "parter_choice"]) == ["defense", "partner_choice"]
    # resident / visitor are mode demands, never duplicated as tags
    assert "resident" not in resolve_tag_set("all")
    with pytest.raises(CapprofError, match='did you mean "defense"'):
        resolve_tag_set(["defence"])


def test_demand_groups_of_a_demand_matrix_follow_its_columns():
    columns = list(demand_matrix(["clean_up_7", "territory__rooms_0"]).columns)
    groups = demand_groups(columns + ["night_vision"])  # a custom new demand is a behaviour
    assert list(groups) == columns + ["night_vision"]
    assert groups["clean_up"] == groups["territory__rooms"] == "substrate"
    assert groups["visitor"] == "mode"
    assert groups["night_vision"] == groups["reciprocity"] == "behaviour"
    assert set(groups.values()) == {"substrate", "mode", "behaviour"}
    assert "territory" not in columns  # one territory substrate among these rows: its family would repeat it


def test_substrate_families_are_sibling_substrates_and_the_matrix_games():
    families = substrate_families(load_catalog()["substrate"])
    assert families["chemistry"] == ["chemistry__three_metabolic_cycles",
                                     "chemistry__three_metabolic_cycles_with_plentiful_distractors",
                                     "chemistry__two_metabolic_cycles", "chemistry__two_metabolic_cycles_with_distractors"]
    assert len(families["in_the_matrix"]) == 15 and "running_with_scissors_in_the_matrix__one_shot" in families["in_the_matrix"]
    assert "clean_up" not in families and "allelopathic_harvest" not in families  # a family of one is its substrate
    demands = demand_matrix(["chemistry__two_metabolic_cycles_0", "chemistry__three_metabolic_cycles_0", "territory__rooms_0"])
    assert demands["chemistry"].tolist() == [1.0, 1.0, 0.0]
    assert demand_groups(["chemistry", "in_the_matrix", "chemistry__two_metabolic_cycles"]) == {
        "chemistry": "family", "in_the_matrix": "family", "chemistry__two_metabolic_cycles": "substrate"}


def test_the_family_table_in_the_docs_is_the_catalogs_families():
    # docs/tags.md lists each family with its number of substrates; a family
    # added or lost in the code must show there.
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "tags.md").read_text()
    section = text.split("## Substrate families")[1].split("\n## ")[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| `")]
    documented = {cells[1].strip().strip("`"): int(cells[2]) for cells in rows}
    families = substrate_families(load_catalog()["substrate"])
    assert documented == {name: len(subs) for name, subs in families.items()}


def test_filter_catalog_by_substrate_and_tag():
    catalog = load_catalog()
    assert len(filter_catalog(catalog, ["clean_up"])) == 23
    both = filter_catalog(catalog, ["clean_up"], ["enforcement", "visitor"])
    assert sorted(both["scenario"]) == ["clean_up_13", "clean_up_14", "clean_up_15", "clean_up_16"]


def test_cli_tags_csv_for_clean_up(cli):
    result = cli("tags", "--substrate", "clean_up", "--format", "csv")
    assert result.code == 0
    lines = result.out.strip().splitlines()
    assert lines[0] == "scenario,substrate,n_focal,n_background,tags,description"
    assert len(lines) == 1 + 23
    assert lines[1].startswith("clean_up_0,clean_up,3,4,")
    assert "chance_to_benefit_oneself_without_imposing_social_cost;visitor" in lines[1]


def test_cli_tags_json_is_parseable(cli):
    result = cli("tags", "--tag", "defense", "--format", "json")
    rows = json.loads(result.out)
    assert rows and all("defense" in r["tags"] for r in rows)


@pytest.mark.runners
def test_shipped_catalog_matches_installed_meltingpot():
    pytest.importorskip("meltingpot")
    from capprof.tagging.catalog import build_catalog_records, shipped_catalog_path

    shipped = json.loads(shipped_catalog_path().read_text())
    assert shipped == json.loads(json.dumps(build_catalog_records())), (
        "tagging/data/scenarios.json is stale: run `capprof catalog --regenerate`"
    )
