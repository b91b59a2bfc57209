"""Runners on real Melting Pot substrates with short episodes (fast suite).

Substrates are chosen for quick builds (prisoners_dilemma arena, clean_up,
commons_harvest); one module-scoped run is shared by the schema and scores
checks.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.runners

PD_VISITOR = "prisoners_dilemma_in_the_matrix__arena__visitor_defector"
CLEAN_UP_VISITOR = "clean_up__visitor_cleaner"
NO_ZAP = "commons_harvest__open__no_zap"

SUBMISSIONS = textwrap.dedent('''
    """Contest-style submissions: plain meltingpot Policy subclasses."""
    import os
    import sys
    import time

    import numpy as np
    from meltingpot.utils.policies import policy

    HOARD = []


    class Forward(policy.Policy):
        """A well-behaved submission: always steps forward."""

        def initial_state(self):
            return ()

        def step(self, timestep, prev_state):
            return 1, prev_state

        def close(self):
            pass


    class Crashing(Forward):
        def step(self, timestep, prev_state):
            raise RuntimeError("boom at step")


    class Invalid(Forward):
        def step(self, timestep, prev_state):
            return 99, prev_state


    class Hanging(Forward):
        def step(self, timestep, prev_state):
            time.sleep(30)
            return 0, prev_state


    class FailsAtFive(Forward):
        """Raises on its sixth call, after five substrate steps."""

        def initial_state(self):
            return 0

        def step(self, timestep, prev_state):
            if prev_state == 5:
                raise ValueError("five is enough")
            return 1, prev_state + 1


    class Exits(FailsAtFive):
        def step(self, timestep, prev_state):
            if prev_state == 5:
                sys.exit("leaving")
            return 1, prev_state + 1


    class HardExit(FailsAtFive):
        def step(self, timestep, prev_state):
            if prev_state == 4:
                os._exit(3)
            return 1, prev_state + 1


    class Hungry(Forward):
        def step(self, timestep, prev_state):
            HOARD.append(np.ones(64 * 2**20 // 8))  # 64 MB per step, touched (~0.5 s on a loaded machine)
            return 0, prev_state
''')


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    path = tmp_path_factory.mktemp("subs") / "entries.py"
    path.write_text(SUBMISSIONS)
    return path


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """Two populations x three offline/variant scenarios x 2 episodes, 20 steps."""
    from capprof.cli import main

    out = tmp_path_factory.mktemp("run") / "out"
    code = main(["run", "--population", "random", "--population", "mix=noop+aggressor+random",
                 "--scenario", PD_VISITOR, "--scenario", CLEAN_UP_VISITOR, "--scenario", NO_ZAP,
                 "--episodes", "2", "--max-steps", "20", "--out", str(out), "--seed", "3",
                 "--series-every", "5", "--quiet"])
    assert code == 0
    return out


# ------------------------------------------------------------ scenarios


def test_scenarios_lists_offline_suite_with_modes_and_tags(cli):
    res = cli("scenarios", "--suite", "offline", "--format", "csv")
    assert res.code == 0, res.err
    from io import StringIO

    table = pd.read_csv(StringIO(res.out))
    assert set(table["substrate"]) == {
        "clean_up", "prisoners_dilemma_in_the_matrix__arena", "territory__rooms",
        "allelopathic_harvest__open", "commons_harvest__open"}
    assert not table["needs_assets"].any()
    for _, row in table.iterrows():
        expected = "resident" if row.n_focal > row.n_background else "visitor"
        assert row["mode"] == expected
        assert expected in row["scenario"]
    aggressors = table[table["background"] == "aggressor"]
    assert len(aggressors) and aggressors["tags"].str.contains("defense").all()


def test_scenarios_official_and_variants(cli):
    official = cli("scenarios", "--suite", "official", "--format", "csv")
    assert official.code == 0 and "territory__rooms_2" in official.out
    variants = cli("scenarios", "--suite", "variants", "--format", "csv")
    assert "commons_harvest__open__regrowth_x0p1" in variants.out
    assert "fireZap disabled" in variants.out


def test_scenario_demands_match_custom_demands_format(tmp_path):
    from capprof.runners.scenarios.scenarios import scenario_demands, write_demands_yaml
    from capprof.tagging.demands import load_custom_demands

    demands = scenario_demands()
    assert demands.loc[PD_VISITOR, "visitor"] == 1.0
    assert demands.loc[PD_VISITOR, "resident"] == 0.0
    assert demands.loc["territory__rooms__resident_aggressor", "defense"] == 1.0
    assert demands.loc[NO_ZAP, ["resident", "visitor"]].sum() == 0.0  # nobody in the background
    loaded = load_custom_demands(write_demands_yaml(tmp_path / "d.yaml"))
    assert set(loaded.index) == set(demands.index)
    assert loaded.loc[CLEAN_UP_VISITOR, "substrate"] == "clean_up"


def test_regrowth_variant_scales_meltingpot_settings():
    from meltingpot import substrate as mp_substrate
    from meltingpot.configs.substrates import commons_harvest__open as config_module

    from capprof.runners.scenarios.scenarios import get_scenario
    from capprof.runners.episode.substrate import apply_component_kwarg

    scenario = get_scenario("commons_harvest__open__regrowth_x0p1")
    config = mp_substrate.get_config(scenario.substrate)
    settings = config.lab2d_settings_builder(roles=scenario.roles, config=config)
    assert apply_component_kwarg(settings, scenario.overrides[0]) == 1
    regrow = settings["simulation"]["prefabs"]["apple"]["components"]
    probs = next(c for c in regrow if c["component"] == "DensityRegrow")["kwargs"]["regrowthProbabilities"]
    np.testing.assert_allclose(probs, np.asarray(config_module.REGROWTH_PROBABILITIES) * 0.1)


def test_no_zap_variant_keeps_zappers_ready():
    """Zapping spends READY_TO_SHOOT in the real substrate; with zapping
    disabled, players who press zap stay ready."""
    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    from capprof.runners.scenarios.scenarios import Scenario, get_scenario
    from capprof.runners.episode.substrate import build_substrate

    no_zap = get_scenario(NO_ZAP)
    normal = Scenario(name="plain", substrate=no_zap.substrate, roles=no_zap.roles, is_focal=no_zap.is_focal)
    ready_after = {}
    for scenario in (normal, no_zap):
        env = build_substrate(scenario, env_seed=5)
        try:
            env.reset()
            ts = env.step([7] * scenario.n_players)  # 7 = fireZap in commons_harvest
            ready_after[scenario.name] = [float(o["READY_TO_SHOOT"]) for o in ts.observation]
        finally:
            env.close()
    assert max(ready_after["plain"]) == 0.0
    assert min(ready_after[NO_ZAP]) == 1.0


# ------------------------------------------------------------ run results


def test_run_writes_episode_dataset(small_run):
    from capprof.runners.execution.results import EPISODE_SCHEMA, read_results

    files = sorted(small_run.glob("*.parquet"))
    assert len(files) == 2 * 3 * 2
    table = read_results(small_run)
    assert list(table.columns) == EPISODE_SCHEMA.names
    assert (table["status"] == "ok").all(), table[["status", "error"]]
    assert (table["steps"] == 20).all()
    assert set(table["team"]) == {"random", "mix"}
    pd_rows = table[table["scenario"] == PD_VISITOR]
    assert all(len(r) == 8 for r in pd_rows["player_returns"])
    for _, row in table.iterrows():
        returns = np.asarray(row["player_returns"])
        focal = np.asarray(row["is_focal"])
        assert row["focal_per_capita_return"] == pytest.approx(returns[focal].mean())
        assert row["social_welfare"] == pytest.approx(returns.sum())
        assert len(row["return_series"]) == 4  # every 5 of 20 steps
        assert row["series_every"] == 5 and len(row["gini_series"]) == row["steps"] // row["series_every"]
        assert list(row["return_series"][-1]) == pytest.approx(list(returns))
    no_zap = table[table["scenario"] == NO_ZAP]
    assert no_zap["background_per_capita_return"].isna().all()  # focal players only
    mix = table[table["team"] == "mix"]
    assert set().union(*map(set, mix["focal_members"])) <= {"noop", "aggressor", "random"}
    assert (small_run / "_demands.yaml").exists()


def test_scores_reads_the_run_directory(small_run, cli):
    res = cli("scores", str(small_run), "--demands", str(small_run / "_demands.yaml"),
              "--by", "scenario", "--format", "csv")
    assert res.code == 0, res.err
    assert PD_VISITOR in res.out and "mix" not in res.err


def test_same_seed_fills_the_same_slots_different_seed_differs(small_run):
    from capprof.runners.episode.episode import EpisodeTask, run_episode
    from capprof.runners.execution.results import read_results
    from capprof.runners.scenarios.scenarios import get_scenario

    table = read_results(small_run)
    saved = table[(table["team"] == "mix") & (table["scenario"] == CLEAN_UP_VISITOR)
                  & (table["episode"] == 1)].iloc[0]
    task = EpisodeTask(run_id="x", population="mix=noop+aggressor+random", team="mix",
                       scenario=get_scenario(CLEAN_UP_VISITOR), episode=1, seed=3, max_steps=20,
                       series_every=5)
    again = run_episode(task)
    # Returns are not compared: dmlab2d does not reproduce an episode from its
    # seed (docs/runners.md, "Seeds and backends").
    assert list(again.focal_members) == list(saved["focal_members"])
    assert list(again.background_members) == list(saved["background_members"])
    samples = {tuple(run_episode(EpisodeTask(
        run_id="x", population="mix=noop+aggressor+random", team="mix",
        scenario=get_scenario(PD_VISITOR), episode=0, seed=s, max_steps=1)).focal_members)
        for s in range(6)}
    assert len(samples) > 1  # the seed controls which members fill the focal slots


def test_harvester_collects_apples_noop_does_not():
    from capprof.runners.episode.episode import EpisodeTask, run_episode
    from capprof.runners.scenarios.scenarios import get_scenario

    scenario = get_scenario("commons_harvest__open__resident_harvester")
    returns = {}
    for team in ("harvester", "noop"):
        rec = run_episode(EpisodeTask(run_id="x", population=team, team=team, scenario=scenario,
                                      episode=0, seed=0, max_steps=60))
        assert rec.status == "ok", rec.error
        assert rec.series_every is None and rec.return_series == ()  # no --series-every
        returns[team] = rec.focal_per_capita_return
    assert returns["harvester"] > 0 == returns["noop"]


def _apple_view(info, apples) -> np.ndarray:
    """An 11x11-cell egocentric RGB view (8 px cells) with apples at the
    given (row, col) cells; the player sits at row 9, column 5."""
    rgb = np.zeros((88, 88, 3), dtype=np.uint8)
    for r, c in apples:
        rgb[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] = info.colour("Apple")
    return rgb


def test_restrained_harvester_skips_a_lone_apple_for_one_in_a_patch():
    import dm_env

    from capprof.runners.populations.populations import parse_population

    from capprof.runners.populations.substrate_info import substrate_info

    info = substrate_info("commons_harvest__open")
    # A lone apple straight ahead (2 cells up) and a patch of four to the right.
    view = _apple_view(info, [(7, 5), (9, 8), (9, 9), (8, 8), (8, 9)])
    timestep = dm_env.restart({"RGB": view})
    greedy = parse_population("harvester").members[0].build(info, 0)
    restrained = parse_population("restrained_harvester").members[0].build(info, 0)
    assert greedy.step(timestep, 0)[0] == info.action(move=1)  # forward, to the lone apple
    assert restrained.step(timestep, 0)[0] == info.action(move=2)  # right, to the patch


def test_prosocial_plays_each_substrates_cooperative_act():
    import dm_env

    from capprof.runners.populations.populations import parse_population

    from capprof.runners.populations.substrate_info import substrate_info

    expected = {"clean_up": {"fireClean": 1}, "prisoners_dilemma_in_the_matrix__arena": {"interact": 1},
                "allelopathic_harvest__open": {"fire_1": 1}, "territory__rooms": {"fireClaim": 1}}
    for substrate, act in expected.items():
        info = substrate_info(substrate)
        policy = parse_population("prosocial").members[0].build(info, 0)
        observation = {"RGB": np.zeros((88, 88, 3), dtype=np.uint8), "READY_TO_SHOOT": 1.0,
                       "INVENTORY": np.array([1.0, 0.0])}
        actions = {policy.step(dm_env.restart(observation), 0)[0] for _ in range(60)}
        assert info.action(**act) in actions, substrate
        assert info.action(fireZap=1) not in actions, substrate  # never zaps


def test_prosocial_players_deplete_the_commons_later_than_greedy_harvesters():
    """The safety study's depletion rule (no reward for 50 steps), all seven
    players from one team (no background): greedy harvesters strip
    commons_harvest__open in 30-51 steps, prosocial (restrained) ones in 105
    or more, or never within 300 (8 episodes each, measured). Medians of three
    episodes, because the substrate does not replay an episode from its seed."""
    from capprof.runners.episode.episode import EpisodeTask, run_episode
    from capprof.runners.scenarios.scenarios import get_scenario

    scenario = get_scenario(NO_ZAP)
    depleted = {}
    for team in ("harvester", "prosocial"):
        steps = []
        for episode in range(3):
            rec = run_episode(EpisodeTask(run_id="x", population=team, team=team, scenario=scenario,
                                          episode=episode, seed=0, max_steps=300, series_every=10))
            assert rec.status == "ok", rec.error
            assert rec.focal_per_capita_return > 0
            steps.append(np.nan_to_num(rec.depleted_at_step, nan=np.inf))  # NaN: never depleted
        depleted[team] = np.median(steps)
    assert depleted["prosocial"] > depleted["harvester"] + 30, depleted


# ------------------------------------------------------------ failures


def test_failing_submissions_are_recorded_and_the_run_finishes(submissions, tmp_path, cli):
    out = tmp_path / "out"
    pops = [f"ok={submissions}:Forward", f"crash={submissions}:Crashing", f"invalid={submissions}:Invalid",
            f"hang={submissions}:Hanging", f"hungry={submissions}:Hungry"]
    args = ["run", "--scenario", PD_VISITOR, "--episodes", "1", "--max-steps", "25", "--out", out,
            "--step-timeout", "2", "--memory-gb", "0.15", "--quiet"]
    for p in pops:
        args += ["--population", p]
    res = cli(*args)
    assert res.code == 0, res.err
    assert "4 failed" in res.out
    table = pd.read_parquet(out).set_index("team")
    assert table.loc["ok", "status"] == "ok"
    assert table.loc["ok", "steps"] == 25
    assert table.loc["crash", "status"] == "error"
    assert "RuntimeError: boom at step" in table.loc["crash", "error"]
    assert table.loc["invalid", "status"] == "invalid_action"
    assert "99" in table.loc["invalid", "error"]
    assert table.loc["hang", "status"] == "timeout"
    assert table.loc["hungry", "status"] == "memory"
    scores = cli("scores", str(out), "--demands", str(out / "_demands.yaml"), "--format", "csv")
    assert scores.code == 0 and "4 failed episode(s)" in scores.err


# ------------------------------------------------------------ bad input


@pytest.mark.parametrize("args, needle", [
    (["--population", "random", "--scenario", "clean_up__visitor_cleanr"], 'did you mean "clean_up__visitor_cleaner"'),
    (["--population", "randm", "--scenario", PD_VISITOR], 'did you mean "random"'),
    (["--population", "random", "--scenario", "clean_up_0"], 'needs DeepMind\'s bot "clean_up__cleaner_0"'),
    (["--population", "random"], "no scenario chosen"),
    (["--population", "x=nosuch_module_zz:Policy", "--scenario", PD_VISITOR], 'cannot import "nosuch_module_zz"'),
    (["--population", "random", "--scenario", PD_VISITOR, "--workers", "2"], "--workers needs --ray"),
    (["--population", "rllib:/nowhere", "--scenario", PD_VISITOR], "checkpoint directory /nowhere does not exist"),
    (["--population", "random", "--scenario", PD_VISITOR, "--max-steps", "0"],
     "argument --max-steps: 0 is below 1; give a whole number >= 1"),
    (["--population", "random", "--scenario", PD_VISITOR, "--seed", "-1"],
     "argument --seed: -1 is outside the seeds capprof takes; give a whole number from 0 to 2147483647"),
    (["--population", "random", "--scenario", PD_VISITOR, "--step-timeout", "0"],
     "argument --step-timeout: 0 is not a finite number > 0"),
    (["--population", "random", "--scenario", PD_VISITOR, "--workers", "0", "--ray"],
     "argument --workers: 0 is below 1"),
    (["--population", "random", "--scenario", PD_VISITOR, "--ray", "--no-isolate"],
     "--no-isolate does not apply with --ray"),
    (["--population", "random", "--scenario", PD_VISITOR, "--runtime-env", '{"working_dir": "."}'],
     "--runtime-env needs --ray"),
    (["--population", "random", "--scenario", PD_VISITOR, "--ray", "--runtime-env", "[1]"],
     "argument --runtime-env: give a JSON object"),
    # two spellings of one scenario would write its episodes twice, the second over the first
    (["--population", "random", "--scenario", "commons_harvest__open:regrowth=1",
      "--scenario", "commons_harvest__open:regrowth=1.0"],
     '--scenario "commons_harvest__open:regrowth=1.0" is the scenario "commons_harvest__open:regrowth=1" again'),
    (["--population", "random", "--scenario", PD_VISITOR, "--seed", str(2**63)],
     "argument --seed: 9223372036854775808 is outside the seeds capprof takes; give a whole number from 0 to"),
    (["--population", "random+", "--scenario", PD_VISITOR], 'population "random+" has an empty member'),
    (["--population", str(Path(__file__).parent), "--scenario", PD_VISITOR],
     "is a directory, not a policy file; give FILE.py[:Class], or a directory as rllib:DIR"),
    (["--population", str(Path(__file__).parents[1] / "README.md"), "--scenario", PD_VISITOR],
     "README.md is not a Python file (.py)"),
    (["--population", "rllib:" + str(Path(__file__).parents[1] / "README.md"), "--scenario", PD_VISITOR],
     "README.md is a file; give the checkpoint directory"),
])
def test_bad_input_is_one_line_exit_2(cli, tmp_path, args, needle):
    out = tmp_path / "out"
    res = cli("run", *args, "--episodes", "1", "--out", out)
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capprof: error:") and needle in lines[0], res.err
    assert not out.exists()  # failed before any episode


def test_rerun_without_resume_refuses_to_duplicate(small_run, cli):
    res = cli("run", "--population", "random", "--scenario", PD_VISITOR, "--episodes", "1",
              "--max-steps", "20", "--out", small_run, "--seed", "3", "--quiet")
    assert res.code == 2 and "--resume" in res.err
    res = cli("run", "--population", "random", "--scenario", PD_VISITOR, "--episodes", "3",
              "--max-steps", "20", "--out", small_run, "--seed", "3", "--resume", "--quiet")
    assert res.code == 0 and "2 already done" in res.out
    table = pd.read_parquet(small_run)
    keys = table[["team", "scenario", "episode"]]
    assert not keys.duplicated().any()


# ------------------------------------------------------------ measures and records (no substrate)


def test_gini_is_zero_for_equal_all_zero_or_no_returns_and_nan_when_undefined():
    from capprof.inequality import gini

    assert gini([0.0, 0.0, 0.0]) == 0.0  # nobody has more than anyone else
    assert gini([]) == 0.0
    assert gini([3.0, 3.0]) == 0.0
    assert gini([0.0, 0.0, 0.0, 4.0]) == pytest.approx(3 / 4)  # one player has everything: (n-1)/n
    assert gini([1.0, np.nan, 3.0]) == pytest.approx(gini([1.0, 3.0]))  # non-finite values left out
    assert np.isnan(gini([-1.0, 1.0]))  # values differ, mean not positive


def test_online_depletion_matches_the_offline_rule():
    from capprof.runners.episode.measures import Depletion, depleted_at

    rng = np.random.default_rng(0)
    for _ in range(50):
        rewards = (rng.random(400) < rng.uniform(0.0, 0.1)).astype(float)
        online = Depletion()
        for r in rewards:
            online.add(r)
        assert np.array_equal(online.step, depleted_at(rewards), equal_nan=True)
    assert depleted_at([1.0] * 10 + [0.0] * 50) == 10.0


def test_episode_schema_is_the_record_and_docs_list_every_column():
    from capprof.runners.episode.records import EpisodeRecord, record_columns
    from capprof.runners.execution.results import EPISODE_SCHEMA

    import dataclasses
    from pathlib import Path

    assert EPISODE_SCHEMA.names == [f.name for f in dataclasses.fields(EpisodeRecord)]
    assert EPISODE_SCHEMA.field("series_every").nullable
    docs = (Path(__file__).resolve().parents[1] / "docs" / "runners.md").read_text()
    rows = {line.split(" | ")[0][2:]: line for line in docs.splitlines() if line.startswith("| ")}
    for column, meaning in record_columns().items():
        assert rows[column].endswith(f" | {meaning} |"), column


# ------------------------------------------------------------ reliability (issue 10)


def test_failed_episode_records_the_steps_it_reached_and_sys_exit_is_its_failure(submissions):
    from capprof.runners.episode.episode import EpisodeTask, run_episode
    from capprof.runners.scenarios.scenarios import get_scenario

    for cls, words in (("FailsAtFive", "raised ValueError: five is enough"),
                       ("Exits", "raised SystemExit: leaving")):
        rec = run_episode(EpisodeTask(run_id="x", population=f"{submissions}:{cls}", team=cls,
                                      scenario=get_scenario(PD_VISITOR), episode=0, seed=0, max_steps=20))
        assert rec.status == "error" and words in rec.error, rec.error
        assert rec.steps == 5  # five substrate steps completed before the sixth call failed
        assert rec.wall_seconds > 0 and np.isnan(rec.focal_per_capita_return)


def test_os_exit_in_a_policy_fails_its_episode_and_the_run_goes_on(submissions, tmp_path, cli):
    """Imported code runs isolated by default: os._exit(3) in step ends the
    episode process, not the run; the episode records the steps it reached."""
    out = tmp_path / "out"
    res = cli("run", "--population", f"quitter={submissions}:HardExit", "--population", "random",
              "--scenario", PD_VISITOR, "--episodes", "2", "--max-steps", "10", "--out", out, "--quiet")
    assert res.code == 0, res.err
    assert "2 failed" in res.out and "2 episode(s) ok" in res.out
    table = pd.read_parquet(out)
    quitter = table[table["team"] == "quitter"]
    assert (quitter["status"] == "error").all()
    assert quitter["error"].str.contains(r"the episode process died \(exit code 3\)").all()
    assert (quitter["steps"] == 4).all()
    assert (table[table["team"] == "random"]["steps"] == 10).all()


def test_a_run_where_every_episode_failed_exits_1_saying_so(submissions, tmp_path, cli):
    out = tmp_path / "out"
    res = cli("run", "--population", f"crash={submissions}:Crashing", "--scenario", PD_VISITOR,
              "--episodes", "2", "--max-steps", "5", "--out", out, "--no-isolate", "--quiet")
    assert res.code == 1
    assert res.err.strip().splitlines() == [
        "capprof: error: every episode failed (2 of 2; the first: focal policy "
        f"{submissions}:Crashing raised RuntimeError: boom at step); fix the policy and run again"]
    assert len(list(out.glob("*.parquet"))) == 2  # the failures are recorded


def test_an_out_that_cannot_be_written_fails_before_any_episode(tmp_path, cli):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    res = cli("run", "--population", "random", "--scenario", PD_VISITOR, "--episodes", "1",
              "--out", blocker / "out", "--quiet")
    assert res.code == 2
    assert res.err.strip().splitlines() == [
        f"capprof: error: --out {blocker / 'out'} cannot be written (Not a directory); "
        "choose a directory you can write"]


def test_a_second_run_into_a_locked_out_refuses_naming_the_holder(tmp_path, cli):
    """Another process holds the directory: the run refuses with one line
    naming its pid; once that process is gone (even killed), runs proceed."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from capprof.runners.execution.lock import RunLock\n"
        f"lock = RunLock({str(out)!r}).acquire()\n"
        "print('locked', flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = ("run", "--population", "random", "--scenario", PD_VISITOR, "--episodes", "1",
                "--max-steps", "5", "--out", out, "--quiet")
        res = cli(*args)
        assert res.code == 2
        assert res.err.strip().splitlines() == [
            f"capprof: error: {out} is in use by another `capprof run` (pid {holder.pid}); wait for it "
            "to finish, or choose another --out"]
        assert not list(out.glob("*.parquet"))
        holder.send_signal(signal.SIGKILL)  # the lock file stays behind; the lock does not
        holder.wait()
        assert (out / "_capprof_run.lock").exists()
        res = cli(*args)
        assert res.code == 0, res.err
        assert len(list(out.glob("*.parquet"))) == 1
        assert not (out / "_capprof_run.lock").exists()
    finally:
        holder.kill()
        holder.wait()


def test_interrupted_run_keeps_demands_and_episodes_and_suggests_the_exact_resume(tmp_path, cli, monkeypatch):
    """Ctrl-C during the second episode: the first is kept, _demands.yaml was
    written before any episode (so `capprof scores` reads the directory), and
    the message gives the command that continues the run."""
    import capprof.runners.execution.execute as execute_module

    out = tmp_path / "out dir"
    real = execute_module.run_episode
    calls = []

    def interrupted_second(task):
        assert (out / "_demands.yaml").exists()  # written first
        calls.append(task.key)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(execute_module, "run_episode", interrupted_second)
    res = cli("run", "--population", "random", "--scenario", PD_VISITOR, "--episodes", "3", "--max-steps", "5",
              "--out", out, "--seed", "4", "--series-every", "5", "--quiet")
    assert res.code == 130
    assert res.err.strip().splitlines() == [
        f"capprof: interrupted; 1 finished episode(s) are kept in {out}; continue with: capprof run "
        f"--population random --scenario {PD_VISITOR} --episodes 3 --max-steps 5 --out '{out}' --seed 4 "
        "--series-every 5 --quiet --resume"]
    scores = cli("scores", out, "--by", "scenario", "--format", "csv")
    assert scores.code == 0, scores.err
    assert PD_VISITOR in scores.out
    monkeypatch.setattr(execute_module, "run_episode", real)
    resumed = cli("run", "--population", "random", "--scenario", PD_VISITOR, "--episodes", "3",
                  "--max-steps", "5", "--out", out, "--seed", "4", "--series-every", "5", "--quiet", "--resume")
    assert resumed.code == 0 and "1 already done" in resumed.out


def test_execute_from_python_writes_demands_before_any_episode(tmp_path, monkeypatch):
    import capprof.runners.execution.execute as execute_module
    from capprof.runners.execution.execute import execute, plan

    def interrupted(task):
        raise KeyboardInterrupt

    monkeypatch.setattr(execute_module, "run_episode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute(plan(["random"], [PD_VISITOR], episodes=1, max_steps=5), tmp_path / "out", quiet=True)
    from capprof.tagging.demands import load_custom_demands

    assert PD_VISITOR in load_custom_demands(tmp_path / "out" / "_demands.yaml").index
    assert not (tmp_path / "out" / "_capprof_run.lock").exists()  # released on the way out


def test_ray_driver_runs_an_episode_again_when_its_worker_is_lost_and_writes_it_once():
    """The Ray driver loop with a stand-in for Ray: the actor running episode
    1 dies (as when its node is lost); the episode is queued again, runs on
    the other actor, and is handed to the writer once. An episode whose
    worker is lost three times is recorded as failed, saying so."""
    from types import SimpleNamespace

    from capprof.errors import CapprofError
    from capprof.runners.execution import ray_backend
    from capprof.runners.episode.records import EpisodeRecord, EpisodeTask
    from capprof.runners.scenarios.scenarios import get_scenario

    class Died(Exception):
        pass

    class Actor:
        def __init__(self, dies_on=()):
            self.dies_on, self.alive = set(dies_on), True
            self.run = SimpleNamespace(remote=self.submit)

        def submit(self, task):
            return (self, task)

    class FakeRay:
        def __init__(self, free_cpus):
            self.free_cpus = free_cpus

        def wait(self, refs, num_returns, timeout=None):
            return refs[:num_returns], refs[num_returns:]

        def get(self, ref):
            actor, task = ref
            if not actor.alive or task.episode in actor.dies_on:
                actor.alive = False
                raise Died("the actor died unexpectedly")
            return EpisodeRecord.for_task(task, steps=5)

        def available_resources(self):
            return {"CPU": self.free_cpus}

        def remote(self, **options):
            return lambda cls: SimpleNamespace(remote=lambda: Actor())

    scenario = get_scenario(PD_VISITOR)
    tasks = [EpisodeTask(run_id="r", population="random", team="random", scenario=scenario, episode=e, seed=0)
             for e in range(4)]
    written = []
    actors = [Actor(), Actor(dies_on={1})]  # the second actor takes episode 1 and dies
    retried = ray_backend._drive(FakeRay(free_cpus=0), actors, tasks, written.append)
    assert retried == [("random", PD_VISITOR, 1)]
    assert sorted(r.episode for r in written) == [0, 1, 2, 3] and all(r.ok for r in written)
    assert len(actors) == 1  # the node's CPU is gone: no replacement, the run goes on with one actor

    class Stopped(FakeRay):  # every node of the cluster was stopped: nothing ever returns
        def wait(self, refs, num_returns, timeout=None):
            return [], refs

        def nodes(self):
            return [{"NodeID": "a", "Alive": False}]

    with pytest.raises(CapprofError, match="the Ray cluster has no node left"):
        ray_backend._drive(Stopped(free_cpus=0), [Actor()], tasks[:1], written.append)

    class Cursed(Actor):  # every actor that tries episode 0 dies
        def __init__(self):
            super().__init__(dies_on={0})

    ray = FakeRay(free_cpus=1)
    ray.remote = lambda **options: (lambda cls: SimpleNamespace(remote=Cursed))
    written = []
    retried = ray_backend._drive(ray, [Cursed()], tasks[:1], written.append)
    assert retried == [("random", PD_VISITOR, 0)] * (ray_backend.MAX_ATTEMPTS - 1)
    (record,) = written
    assert record.status == "error"
    assert record.error == ("the worker running this episode was lost 3 times: Died: the actor died unexpectedly")


def test_a_disk_filling_up_mid_run_is_one_line_with_the_resume_command(tmp_path, cli, monkeypatch):
    import errno

    import capprof.runners.execution.execute as execute_module

    out = tmp_path / "out"
    real = execute_module.write_record
    written = []

    def full_after_one(out_dir, record):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(out_dir / "next.parquet"))
        written.append(real(out_dir, record))
        return written[-1]

    monkeypatch.setattr(execute_module, "write_record", full_after_one)
    res = cli("run", "--population", "random", "--scenario", PD_VISITOR, "--episodes", "2", "--max-steps", "3",
              "--out", out, "--quiet")
    assert res.code == 2
    assert res.err.strip().splitlines() == [
        f"capprof: error: {out / 'next.parquet'}: No space left on device; 1 finished episode(s) are kept in {out}; "
        f"free space or fix the directory, then continue with: capprof run --population random --scenario {PD_VISITOR} "
        f"--episodes 2 --max-steps 3 --out {out} --seed 0 --quiet --resume"]
    assert len(list(out.glob("*.parquet"))) == 1 and not (out / "_capprof_run.lock").exists()


def test_a_member_spec_with_its_own_equals_sign_needs_no_team_name():
    from capprof.runners.populations.populations import parse_population

    assert parse_population("shipped:open#sample=0.5", check=False).team == "shipped:open#sample=0.5"
    assert parse_population("mine=shipped:open#sample=0.5", check=False).team == "mine"
    assert parse_population("mix=random+noop").members[1].spec == "noop"
