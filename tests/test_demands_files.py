"""Custom demand files: graded levels, new scenarios, and their validation."""

import pytest

from capprof.errors import CapprofError
from capprof.tagging.demands import demand_matrix, load_custom_demands


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_adds_new_scenario_and_grades_an_existing_one(tmp_path):
    path = write(tmp_path, "d.yaml", """
new_demands: [night_vision]
scenarios:
  my_clean_up_variant:
    substrate: clean_up
    demands: {visitor: 1, reciprocity: 4, night_vision: 2}
  clean_up_7:
    demands: {reciprocity: 5}
""")
    custom = load_custom_demands(path)
    assert custom.loc["my_clean_up_variant", "substrate"] == "clean_up"
    demands = demand_matrix(["my_clean_up_variant", "clean_up_7", "clean_up_0"], custom=custom)
    assert demands.loc["my_clean_up_variant", "clean_up"] == 1
    assert demands.loc["my_clean_up_variant", "reciprocity"] == 4
    assert demands.loc["my_clean_up_variant", "night_vision"] == 2
    assert demands.loc["clean_up_7", "reciprocity"] == 5  # graded level overrides the binary tag
    assert demands.loc["clean_up_7", "visitor"] == 1  # untouched catalog demands stay
    assert demands.loc["clean_up_0", "night_vision"] == 0


def test_a_new_scenario_belongs_to_its_substrates_family(tmp_path):
    path = write(tmp_path, "d.yaml", """
scenarios:
  my_pd:
    substrate: prisoners_dilemma_in_the_matrix__arena
    demands: {reciprocity: 2}
""")
    demands = demand_matrix(["my_pd", "prisoners_dilemma_in_the_matrix__repeated_0", "stag_hunt_in_the_matrix__arena_0"],
                            custom=load_custom_demands(path))
    assert demands.loc["my_pd", "prisoners_dilemma_in_the_matrix"] == 1
    assert demands.loc["my_pd", "in_the_matrix"] == 1
    assert demands.loc["stag_hunt_in_the_matrix__arena_0", "prisoners_dilemma_in_the_matrix"] == 0
    assert "stag_hunt_in_the_matrix" not in demands.columns  # one of its substrates here: its column would repeat it


def test_csv_with_new_demand_column_and_misspelt_meltingpot_tag(tmp_path):
    path = write(tmp_path, "d.csv", "scenario,substrate,parter_choice,new:crowding\nnew_pd,prisoners_dilemma_in_the_matrix__arena,3,1\n")
    custom = load_custom_demands(path)
    assert custom.loc["new_pd", "partner_choice"] == 3
    assert custom.loc["new_pd", "crowding"] == 1


BAD_FILES = [
    ("unknown.yaml", "scenarios:\n  clean_up_7:\n    demands: {reciprocty: 1}\n", 'did you mean "reciprocity"'),
    ("neg.yaml", "scenarios:\n  clean_up_7:\n    demands: {reciprocity: -1}\n", "between 0 and 5"),
    ("big.csv", "scenario,defense\nterritory__rooms_0,7\n", "between 0 and 5"),
    ("text.csv", "scenario,defense\nterritory__rooms_0,high\n", "not a number"),
    ("dup.csv", "scenario,defense\nterritory__rooms_0,1\nterritory__rooms_0,2\n", "more than once"),
    ("dup.yaml", "scenarios:\n  a:\n    substrate: clean_up\n  a:\n    substrate: clean_up\n", "appears twice"),
    ("sub.yaml", "scenarios:\n  mine:\n    substrate: clean_upp\n", 'did you mean "clean_up"'),
    ("nosub.yaml", "scenarios:\n  brand_new:\n    demands: {defense: 1}\n", "give its `substrate`"),
    ("wrongsub.yaml", "scenarios:\n  clean_up_7:\n    substrate: territory__rooms\n", "runs on \"clean_up\""),
    ("bad.yaml", "scenarios: [unclosed\n", "not valid YAML"),
    ("noscen.csv", "name,defense\nx,1\n", "missing the `scenario` column"),
    ("empty.yaml", "scenarios: {}\n", "describes no scenario"),
    ("d.txt", "scenario\n", "must end in .csv"),
    ("family.yaml", "scenarios:\n  chemistry__two_metabolic_cycles_0:\n    demands: {chemistry: 2}\n",
     '"chemistry" is a substrate family, set from the `substrate` field'),
    # a misspelt key would drop its grades without a word
    ("typo.yaml", "scenarios:\n  mine:\n    substrate: clean_up\n    demand: {reciprocity: 3}\n",
     'scenario "mine" has an unknown key "demand" (did you mean "demands"?)'),
    ("top.yaml", "scenarios:\n  clean_up_7:\n    demands: {reciprocity: 3}\nnew_demand: [x]\n",
     'unknown key "new_demand" (did you mean "new_demands"?)'),
    ("sublist.yaml", "scenarios:\n  mine:\n    substrate: [clean_up]\n", "must be one substrate name"),
    ("newlist.yaml", "new_demands: [[a]]\nscenarios:\n  clean_up_7:\n    demands: {reciprocity: 3}\n",
     "`new_demands` must be a list of names"),
    ("newempty.csv", "scenario,new:\nclean_up_7,1\n", "a `new:` column has no demand name"),
]


@pytest.mark.parametrize("name,text,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_demand_files_give_one_clear_line(tmp_path, name, text, message):
    path = write(tmp_path, name, text)
    with pytest.raises(CapprofError) as info:
        load_custom_demands(path)
    assert message in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_scenario_without_demands_is_named(tmp_path):
    with pytest.raises(CapprofError, match="no demands"):
        demand_matrix(["clean_up_7", "not_a_scenario"])


BAD_CONTENT = [
    ("empty.yaml", b"", "d/empty.yaml is empty"),
    ("blank.csv", b"\n  \n", "is empty"),
    ("utf16.yaml", "scenarios: {}\n".encode("utf-16"), "is UTF-16 text, not UTF-8 text"),
    ("utf16nobom.csv", "scenario,defense\nclean_up_7,1\n".encode("utf-16-le"), "is UTF-16 text"),
    ("binary.yaml", bytes(range(256)), "is a binary file"),
    ("gzip.csv", __import__("gzip").compress(b"scenario,defense\n"), "is gzip-compressed"),
    ("latin1.yaml", "scenarios:\n  caf\xe9:\n    substrate: clean_up\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9"),
    ("blankname.csv", b"scenario,defense\n,1\n", "line 2 has an empty `scenario`"),
    ("duphead.csv", b"scenario,defense,defense\nclean_up_7,1,2\n", "column `defense` appears more than once"),
    ("ragged.csv", b"scenario,defense\nclean_up_7,1,2,3\n", "not a readable CSV"),
    ("list.yaml", b"- clean_up_7\n", "expected a mapping with a `scenarios:` key"),
    ("scalar.yaml", b"scenarios\n", "expected a mapping with a `scenarios:` key"),
    ("inf.yaml", b"scenarios:\n  clean_up_7:\n    demands: {defense: .inf}\n", "between 0 and 5"),
    ("listlevel.yaml", b"scenarios:\n  clean_up_7:\n    demands: {defense: [1]}\n", "not a number"),
]


@pytest.mark.parametrize("name,data,message", BAD_CONTENT, ids=[b[0] for b in BAD_CONTENT])
def test_unreadable_demand_files_are_one_line_naming_what_they_are(tmp_path, name, data, message):
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / name
    path.write_bytes(data)
    with pytest.raises(CapprofError) as info:
        load_custom_demands(path)
    assert message in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_a_directory_is_not_a_demands_file(tmp_path):
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(CapprofError, match="is a directory, not a file"):
        load_custom_demands(tmp_path / "d.yaml")


def test_semicolon_csv_and_utf8_bom_are_read(tmp_path):
    path = write(tmp_path, "d.csv", "\ufeffscenario;substrate;defense\nmine;clean_up;2\n")
    custom = load_custom_demands(path)
    assert custom.loc["mine", "substrate"] == "clean_up" and custom.loc["mine", "defense"] == 2


def test_a_substrate_contradicting_the_catalog_names_both_and_the_fix(tmp_path):
    path = write(tmp_path, "d.csv", "scenario,substrate,defense\nclean_up_7,territory__rooms,2\n")
    with pytest.raises(CapprofError) as info:
        load_custom_demands(path)
    message = str(info.value)
    assert 'scenario "clean_up_7" is given substrate "territory__rooms" but runs on "clean_up"' in message
    assert "give your scenario a new name" in message
