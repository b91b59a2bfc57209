"""Bad population specs and interpreters: one line before any episode (issue 20)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from pathlib import Path

from capprof.errors import CapprofError
from capprof.runners.populations import bridge, venv_member
from capprof.runners.populations.populations import parse_population


def _script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def test_an_interpreter_that_never_answers_is_killed_at_its_deadline(tmp_path, monkeypatch):
    python = _script(tmp_path, "python", "sleep 600")  # sh's child sleep holds the pipes too
    monkeypatch.setattr(venv_member, "PROBE_SECONDS", 1.0)
    began = time.monotonic()
    with pytest.raises(CapprofError) as caught:
        parse_population(f"t=agent.py:Agent@{python}")
    assert time.monotonic() - began < 15
    message = str(caught.value)
    assert "\n" not in message
    assert f"interpreter {python} did not answer within 1 s while capprof was starting it" in message


def test_a_check_that_hangs_names_the_import(tmp_path, monkeypatch):
    agent = tmp_path / "agent.py"
    agent.write_text("import time\ntime.sleep(600)\n")
    monkeypatch.setattr(venv_member, "CHECK_SECONDS", 2.0)
    with pytest.raises(CapprofError, match=r"did not answer within 2 s while capprof was importing .*agent\.py"):
        parse_population(f"t={agent}@{sys.executable}")


def test_an_interpreter_writing_binary_is_not_a_python(tmp_path):
    python = _script(tmp_path, "python", r"printf '\211PNG\000\377\376'")
    with pytest.raises(CapprofError) as caught:
        parse_population(f"t=agent.py:Agent@{python}")
    assert "is not a Python interpreter" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("spec", ["P@python3", "mod:Cls@python3", "agent.py@"])
def test_an_interpreter_given_as_a_name_asks_for_a_path(spec):
    with pytest.raises(CapprofError, match=r'the interpreter after "@" must be a path|nothing after "@"'):
        parse_population(f"t={spec}")


def _submission(tmp_path, policies: str, roles: str):
    kit = tmp_path / "kit" / "my_policies"
    kit.mkdir(parents=True)
    (kit / "__init__.py").write_text("")
    (kit / "user_config.py").write_text(textwrap.dedent(f"""
        class P:
            def initial_state(self): return 0
            def step(self, timestep, state): return 0, state
            def close(self): pass
        SubmissionPolicies = {policies}
        SubmissionRoles = {roles}
    """))
    return str(tmp_path / "kit")


@pytest.mark.parametrize("policies, roles, words", [
    ("{'commons_harvest__open': P}", "{'commons_harvest__open': 'default'}",
     "SubmissionRoles['commons_harvest__open'] is 'default' (a str); give a dict {role: [policy ids]}"),
    ("{'commons_harvest__open': 'P'}", "{'commons_harvest__open': {'default': ['agent_0']}}",
     "SubmissionPolicies['commons_harvest__open'] is 'P' (a str); give a Policy class"),
    ("{'commons_harvest__open': 3}", "{'commons_harvest__open': {'default': ['agent_0']}}",
     "SubmissionPolicies['commons_harvest__open'] is 3 (a int)"),
    ("{'commons_harvest__open': P}", "{'commons_harvest__open': {'default': 'agent_0'}}",
     "SubmissionRoles['commons_harvest__open']['default'] is 'agent_0' (a str); give a list of policy ids"),
    ("{'commons_harvest__open': P}", "{'commons_harvest__open': {'default': ['player_x']}}",
     "lists policy id 'player_x'; ids are agent_<player index>"),
    ("{'commons_harvest__open': P, 'clean_up': P}", "{'commons_harvest__open': {'default': ['agent_0']}}",
     "SubmissionRoles has no entry for clean_up"),
])
def test_bad_user_config_values_are_named(tmp_path, policies, roles, words):
    with pytest.raises(bridge.SpecError) as caught:
        bridge.load_submission(_submission(tmp_path, policies, roles))
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_user_config_through_another_interpreter_is_one_line(tmp_path):
    kit = _submission(tmp_path, "{'commons_harvest__open': P}", "{'commons_harvest__open': 'default'}")
    with pytest.raises(CapprofError, match=r"SubmissionRoles\['commons_harvest__open'\] is 'default' \(a str\)"):
        parse_population(f"t=submission:{kit}@{sys.executable}")


def _run(*args):
    return subprocess.run([sys.executable, "-m", "capprof", *args], capture_output=True, text=True, timeout=600)


def test_policy_ids_and_roles_the_scenario_lacks_are_named_before_any_episode(tmp_path):
    kit = _submission(tmp_path, "{'commons_harvest__open': P}",
                      "{'commons_harvest__open': {'default': ['agent_0', 'agent_99']}}")
    done = _run("run", "--population", f"kit=submission:{kit}@{sys.executable}",
                "--scenario", "commons_harvest__open__resident_harvester", "--episodes", "1",
                "--max-steps", "5", "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "lists policy id 'agent_99', which does not exist" in lines[0]
    assert "ids agent_0 .. agent_" in lines[0]
    kit2 = _submission(tmp_path / "b", "{'commons_harvest__open': P}",
                       "{'commons_harvest__open': {'defualt': ['agent_0']}}")
    done = _run("run", "--population", f"kit=submission:{kit2}@{sys.executable}",
                "--scenario", "commons_harvest__open__resident_harvester", "--episodes", "1",
                "--max-steps", "5", "--out", str(tmp_path / "out2"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"capprof: error: submission:{kit2}@{sys.executable}: role 'defualt' (SubmissionRoles"
        "['commons_harvest__open']) is not a role of commons_harvest__open (did you mean \"default\"?); "
        "its roles are 'default'"]


@pytest.mark.parametrize("roles, bad", [
    ("{'default': ['agent_0'], 'cleaner': ['agent_1']}", "cleaner"),  # beside a valid role: was accepted
    ("{'Default': ['agent_0']}", "Default"),
])
def test_a_role_the_substrate_lacks_is_named_with_the_allowed_roles_before_play(tmp_path, roles, bad):
    from capprof.runners.execution.execute import plan

    kit = _submission(tmp_path, "{'commons_harvest__open': P}", f"{{'commons_harvest__open': {roles}}}")
    with pytest.raises(CapprofError) as caught:
        plan([f"kit=submission:{kit}"], ["commons_harvest__open__resident_harvester"], 1)
    message = str(caught.value)
    assert f"role '{bad}' (SubmissionRoles['commons_harvest__open']) is not a role of commons_harvest__open" \
        in message and message.endswith("its roles are 'default'") and "\n" not in message


def test_a_build_that_hangs_in_the_child_ends_at_the_deadline(tmp_path, monkeypatch):
    from capprof.runners.populations.populations import policy_slots
    from capprof.runners.populations.substrate_info import SubstrateInfo

    agent = tmp_path / "slow_agent.py"
    agent.write_text(textwrap.dedent("""
        import time
        class Agent:
            def __init__(self):
                time.sleep(600)
            def initial_state(self): return 0
            def step(self, timestep, state): return 0, state
            def close(self): pass
    """))
    monkeypatch.setattr(venv_member, "WAIT_SECONDS", 2.0)
    source = venv_member.VenvSource(f"{agent}:Agent", sys.executable)
    source.check()
    began = time.monotonic()
    with pytest.raises(venv_member.PolicyProcessError) as caught:
        source.build(SubstrateInfo("x", ({},), ()), 0, policy_slots(["default"])[0])
    assert time.monotonic() - began < 20
    assert f"the policy interpreter {sys.executable} did not answer within 2 s during building" in str(caught.value)


def test_a_submission_runs_unchanged_in_an_interpreter_without_meltingpot(tmp_path):
    """The policy subclasses meltingpot's Policy, takes its id, reads a file by
    a relative path and reports sys.prefix: the bridge provides the base and
    the submission folder is the working directory."""
    import dm_env
    import numpy as np

    from capprof.runners.populations.populations import policy_slots

    from capprof.runners.populations.substrate_info import SubstrateInfo

    python = str(Path(__file__).resolve().parents[1] / ".venv-legacy" / "bin" / "python")
    if not __import__("os").path.exists(python):
        pytest.skip("no .venv-legacy (make legacy-env)")
    kit = tmp_path / "kit" / "my_policies"
    kit.mkdir(parents=True)
    (kit / "__init__.py").write_text("")
    (tmp_path / "kit" / "weights.txt").write_text("3")
    (kit / "user_config.py").write_text(textwrap.dedent("""
        import sys
        from meltingpot.utils.policies import policy
        class P(policy.Policy):
            def __init__(self, policy_id):
                self.action = int(open("weights.txt").read()) + int(policy_id.split("_")[1])
            def initial_state(self): return 0
            def step(self, timestep, state):
                return (self.action if sys.prefix.endswith(".venv-legacy") else 99), state
            def close(self): pass
        SubmissionPolicies = {"commons_harvest__open": P}
        SubmissionRoles = {"commons_harvest__open": {"default": ["agent_0", "agent_1"]}}
    """))
    source = venv_member.VenvSource(f"submission:{tmp_path / 'kit'}", python)
    assert source.check()["prefix"].endswith(".venv-legacy")
    policy = source.build(SubstrateInfo("commons_harvest__open", ({},) * 8, ()), 0,
                          policy_slots(["default", "default"])[1])
    state = policy.initial_state()
    timestep = dm_env.restart({"RGB": np.zeros((88, 88, 3), np.uint8)})
    assert policy.step(timestep, state)[0] == 4
    policy.close()


def test_rllib_on_an_old_stack_checkpoint_names_the_legacy_env(tmp_path):
    checkpoint = tmp_path / "checkpoint_000001"
    (checkpoint / "policies" / "agent_0").mkdir(parents=True)
    (checkpoint / "algorithm_state.pkl").write_bytes(b"")
    with pytest.raises(CapprofError, match=r"is an old-stack RLlib checkpoint .*`make legacy-env`"):
        parse_population(f"t=rllib:{checkpoint}")
