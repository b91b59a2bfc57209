"""Contest submissions run unchanged: policy-id constructors, context
managers, and starter-kit directories (``submission:DIR``).

The submission in tests/fixtures/submission covers two substrates with one
Policy class that records (in ``$CAPPROF_SUBMISSION_LOG``) the id it was
built with, its entering and closing.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.runners

FIXTURE = Path(__file__).parent / "fixtures" / "submission"
RECORDER = FIXTURE / "my_policies" / "recorder.py"
PD_RESIDENT = "prisoners_dilemma_in_the_matrix__arena__resident_defector"
COMMONS_RESIDENT = "commons_harvest__open__resident_harvester"
CLEAN_UP = "clean_up__visitor_cleaner"


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_policy_id_constructor_and_context_are_honoured(tmp_path, monkeypatch):
    """Member.build passes the slot's id to a one-argument constructor,
    enters the policy, and close() exits it once."""
    import dm_env
    import numpy as np

    from capprof.runners.populations.populations import PolicySlot, parse_population

    from capprof.runners.populations.substrate_info import substrate_info

    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("CAPPROF_SUBMISSION_LOG", str(log))
    member = parse_population(f"{RECORDER}:Recorder").members[0]
    policy = member.build(substrate_info("commons_harvest__open"), 0, PolicySlot.of(4, "default"))
    state = policy.initial_state()
    action, state = policy.step(dm_env.restart({"RGB": np.zeros((88, 88, 3), np.uint8)}), state)
    policy.close()
    policy.close()  # a second close does nothing
    events = [(e["event"], e["policy_id"]) for e in read_log(log)]
    assert events == [("init", "agent_4"), ("enter", "agent_4"), ("step", "agent_4"), ("close", "agent_4")]


def test_zero_argument_policies_still_build(tmp_path):
    from capprof.runners.populations.populations import PolicySlot, parse_population
    from capprof.runners.populations.substrate_info import substrate_info

    path = tmp_path / "plain.py"
    path.write_text("class Still:\n    def initial_state(self):\n        return ()\n"
                    "    def step(self, timestep, state):\n        return 0, state\n"
                    "    def close(self):\n        pass\n")
    policy = parse_population(str(path)).members[0].build(
        substrate_info("commons_harvest__open"), 0, PolicySlot.of(2, "default"))
    assert policy.step(None, policy.initial_state()) == (0, ())


def test_a_scenario_the_submission_does_not_cover_is_one_line_before_any_episode():
    from capprof.errors import CapprofError
    from capprof.runners.populations.populations import check_covers
    from capprof.runners.scenarios.scenarios import get_scenario

    check_covers(f"mine=submission:{FIXTURE}", [get_scenario(PD_RESIDENT), get_scenario(COMMONS_RESIDENT)])
    with pytest.raises(CapprofError) as info:
        check_covers(f"mine=submission:{FIXTURE}", [get_scenario(PD_RESIDENT), get_scenario(CLEAN_UP)])
    message = str(info.value)
    assert "\n" not in message
    assert f"does not cover substrate clean_up (scenario {CLEAN_UP})" in message
    assert "it covers commons_harvest__open, prisoners_dilemma_in_the_matrix__arena" in message


@pytest.mark.parametrize("layout, needle", [
    ("missing", "submission directory {dir} does not exist"),
    ("empty", "{dir} has no my_policies/user_config.py"),
    ("no_policies", "defines no SubmissionPolicies dict; define SubmissionPolicies (substrate -> Policy class)"),
    ("no_roles", "defines no SubmissionRoles dict"),
])
def test_bad_submission_directories_are_one_line_exit_2(cli, tmp_path, layout, needle):
    directory = tmp_path / "kit"
    if layout != "missing":
        (directory / "my_policies").mkdir(parents=True)
    if layout in ("no_policies", "no_roles"):
        (directory / "my_policies" / "__init__.py").write_text("")
        body = "SubmissionRoles = {}\n" if layout == "no_policies" else "SubmissionPolicies = {}\n"
        (directory / "my_policies" / "user_config.py").write_text(body)
    out = tmp_path / "out"
    res = cli("run", "--population", f"kit=submission:{directory}", "--scenario", PD_RESIDENT,
              "--episodes", "1", "--out", out)
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capprof: error:"), res.err
    assert needle.format(dir=directory) in lines[0], res.err
    assert not out.exists()


@pytest.mark.slow
def test_submission_and_policy_id_classes_play_real_episodes(cli, tmp_path, monkeypatch):
    """The starter-kit directory plays both of its substrates, each focal slot
    under an id SubmissionRoles allows; a plain policy-id class gets
    agent_<slot>; every built policy is entered and closed, also in
    episodes that fail."""
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("CAPPROF_SUBMISSION_LOG", str(log))
    out = tmp_path / "out"
    res = cli("run", "--population", f"kit=submission:{FIXTURE}", "--population", f"plain={RECORDER}:Recorder",
              "--population", f"failing={RECORDER}:FailingRecorder",
              "--scenario", PD_RESIDENT, "--scenario", COMMONS_RESIDENT,
              "--episodes", "1", "--max-steps", "20", "--out", out, "--quiet")
    assert res.code == 0, res.err
    table = pd.read_parquet(out).set_index(["team", "scenario"])
    for team in ("kit", "plain"):
        for scenario in (PD_RESIDENT, COMMONS_RESIDENT):
            assert table.loc[(team, scenario), "status"] == "ok", table.loc[(team, scenario), "error"]
            assert table.loc[(team, scenario), "steps"] == 20
    failed = table.loc[("failing", PD_RESIDENT)]
    assert failed["status"] == "error" and "RuntimeError: agent_0 gives up at step 2" in failed["error"]

    events = read_log(log)
    kit = [e for e in events if e["module"] == "my_policies.recorder"]
    plain = [e for e in events if e["module"] != "my_policies.recorder" and e["cls"] == "Recorder"]
    failing = [e for e in events if e["cls"] == "FailingRecorder"]
    # Six focal slots per scenario, one episode each: 12 policies per team.
    for team_events in (kit, plain, failing):
        counts = Counter(e["event"] for e in team_events)
        assert counts["init"] == counts["enter"] == counts["close"] == 12, counts
    # Ids: the kit's prisoner's dilemma allows agent_0 and agent_3 only; commons every agent_<slot>.
    kit_ids = Counter(e["policy_id"] for e in kit if e["event"] == "init")
    assert set(kit_ids) <= {f"agent_{i}" for i in range(6)} and kit_ids["agent_0"] >= 2 and kit_ids["agent_3"] >= 2
    pd_steps = [e for e in kit if e["event"] == "step" and "INVENTORY" in e["observations"]]
    assert len(pd_steps) == 6 and {e["policy_id"] for e in pd_steps} <= {"agent_0", "agent_3"}
    assert Counter(e["policy_id"] for e in plain if e["event"] == "init") == {
        f"agent_{i}": 2 for i in range(6)}  # focal slots 0..5 of both scenarios


def test_run_refuses_an_uncovered_scenario_before_any_episode(cli, tmp_path):
    out = tmp_path / "out"
    res = cli("run", "--population", f"kit=submission:{FIXTURE}", "--scenario", PD_RESIDENT,
              "--scenario", CLEAN_UP, "--episodes", "1", "--out", out)
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capprof: error:"), res.err
    assert "does not cover substrate clean_up" in lines[0] and "it covers commons_harvest__open" in lines[0]
    assert not out.exists()
