"""``SPEC@PYTHON``: a population member that runs in another Python environment.

``SPEC`` is ``module:Class``, ``FILE.py[:Class]``, ``submission:DIR`` or
``rllib-legacy:CHECKPOINT[:POLICY_ID][#greedy|#sample]`` (an old-API-stack
RLlib checkpoint, ``capprof.runners.populations.rllib_legacy``, which runs in the child);
``PYTHON`` is the other environment's interpreter (``/opt/old/bin/python``).
That environment needs only NumPy and dm_env besides the member's own
dependencies: no capprof install. capprof runs its bridge there by file path
(``PYTHON /path/to/capprof/runners/populations/bridge.py``), once per
``ExecutionContext`` of the process that plays the episodes (started at the
first build, reused by later episodes, stopped when the context closes:
at the end of the run; runners/context.py), builds the
member's policies there and exchanges each step's timestep and action over
two pipes, following meltingpot's Policy protocol (``initial_state``,
``step``, ``close``). A policy's state stays in the child; the loop holds a
step counter in its place. The episode loop sends every bridged player's
step ahead (``RemotePolicy.step_ahead``): one frame per episode step goes to
the child, which steps its players back to back and answers them together,
so an episode step costs each side one wake-up, not one per player.

Before any episode, ``VenvSource`` checks the interpreter once (it exists, is
executable, runs the bridge, has NumPy and dm_env, and resolves SPEC there),
so bad input is one line. During an episode, an exception in the child is that
step's error (``PolicyProcessError: <its type and message>``); the child's exit,
crash or a step interrupted by capprof's time limit kills the child and fails
that episode only; the next build starts a new child.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from capprof.errors import CapprofError, note
from capprof.interrupts import die_with_parent
from capprof.runners.context import current
from capprof.runners.populations import bridge
from capprof.runners.populations.substrate_info import substrate_info

BRIDGE = str(Path(bridge.__file__).resolve())
# the directory `make legacy-env` builds the contest-era environment in
LEGACY_VENV = ".venv-legacy"
CHECK_SECONDS = float(os.environ.get("CAPPROF_CHECK_SECONDS", "300") or 300)  # the check imports the member (TensorFlow, ray)
# Every wait for a child's reply (build, initial_state, step, close) ends
# here at the latest; --step-timeout cuts a step shorter.
WAIT_SECONDS = float(os.environ.get("CAPPROF_BRIDGE_WAIT_SECONDS", "300") or 300)
PROBE_SECONDS = float(os.environ.get("CAPPROF_PROBE_SECONDS", "20") or 20)  # `python -c print`: seconds, not minutes
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS")


class PolicyProcessError(RuntimeError):
    """The policy's interpreter reported an error or stopped answering."""


def child_env() -> dict:
    """The child's environment: the parent's, one thread per math library
    (the contest gave one vCPU per agent), and no PYTHONHOME (it would point
    the other interpreter at capprof's standard library)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "__PYVENV_LAUNCHER__")}
    for name in _THREAD_VARS:
        env.setdefault(name, "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def legacy_python() -> str:
    """The contest-era interpreter ``make legacy-env`` builds, as a user should
    write it after ``@``: absolute when capprof runs from its checkout (so the
    advice works from any directory), else the Makefile's relative path."""
    root = Path(__file__).resolve().parents[2]
    if (root / "Makefile").is_file():
        return str(root / LEGACY_VENV / "bin" / "python")
    return f"{LEGACY_VENV}/bin/python"


def check_interpreter(python: str, spec: str) -> dict:
    """Run the bridge's ``--check`` in ``python``: one CapprofError line unless
    the interpreter runs it, has NumPy and dm_env, and resolves ``spec``.
    Returns what the bridge reports (``ok``: the spec's description, ``prefix``)."""
    path = Path(python).expanduser()
    if not path.exists():
        if LEGACY_VENV in path.parts:
            raise CapprofError(f"interpreter {python} does not exist; build the contest's environment with "
                               f"`make legacy-env` in the capprof checkout, then write @{legacy_python()}")
        raise CapprofError(f"interpreter {python} does not exist; after @ give the python of the member's "
                           "environment, e.g. /path/to/venv/bin/python")
    if path.is_dir() or not os.access(path, os.X_OK):
        raise CapprofError(f"interpreter {python} is not an executable file; after @ give the python of the "
                           "member's environment, e.g. /path/to/venv/bin/python")
    probe = "import sys; sys.stdout.write('capprof-probe %d.%d\\n' % sys.version_info[:2])"
    code, out, _ = _run_with_deadline(python, [str(path), "-c", probe], PROBE_SECONDS,
                                      "starting it (a Python interpreter answers in about a second)")
    if b"capprof-probe" not in out:
        raise CapprofError(f"interpreter {python} is not a Python interpreter: asked to print its version it "
                           f"{'exited with code %s' % code if code else 'answered'} "
                           f"{_shown(out) or 'nothing'}; after @ give the python of the member's environment, "
                           "e.g. /path/to/venv/bin/python")
    code, out, err = _run_with_deadline(python, [str(path), BRIDGE, "--check", spec], CHECK_SECONDS,
                                        f"importing {spec} there (capprof's check; does the import hang?)")
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()]
    try:
        result = json.loads(lines[-1])
        if not isinstance(result, dict):
            raise ValueError
    except (IndexError, ValueError):
        raise CapprofError(f"interpreter {python} could not run capprof's bridge (exit {code}: "
                           f"{_last_line(err.decode(errors='replace')) or _shown(out) or 'no output'}); give a "
                           "Python >= 3.8 interpreter with numpy and dm_env") from None
    if "error" in result:
        raise CapprofError(f"{spec}@{python}: {result['error']}")
    return result


def _shown(data: bytes) -> str:
    """The start of a child's output, quoted and printable (it may be binary)."""
    text = data[:60].decode("ascii", errors="replace").replace("\ufffd", "?")
    return repr("".join(c if c.isprintable() else "?" for c in text)) if data else ""


def _run_with_deadline(python: str, argv: list, seconds: float, doing: str) -> tuple[int, bytes, bytes]:
    """Run ``argv`` in a session of its own; past ``seconds`` kill the whole
    session (a script's children too, which would hold the pipes open) and
    raise one CapprofError line naming the interpreter and what it was doing."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=child_env(), start_new_session=True)
    except OSError as exc:
        raise CapprofError(f"interpreter {python} could not be started ({exc}); give a Python >= 3.8 "
                           "interpreter") from None
    try:
        out, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()
        raise CapprofError(f"interpreter {python} did not answer within {seconds:g} s while capprof was "
                           f"{doing}; killed it; check that `{python} -V` answers") from None
    return proc.returncode, out, err


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


class BridgeProcess:
    """One child interpreter running the bridge; restarted after it failed.

    Requests are queued (``post``) and answered in order (``result``), each
    by its ticket, so several can be under way: the episode loop queues a
    step for every open policy, which writes them to the child as one frame,
    and then collects the actions; replies read before they are asked for
    are kept, those of dropped tickets skipped.
    """

    def __init__(self, python: str):
        self.python = python
        self.proc = None
        self.generation = 0
        self._handles = 0
        self._stderr = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.kill()
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([self.python, BRIDGE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=child_env(), bufsize=0,
                                     preexec_fn=die_with_parent if sys.platform.startswith("linux") else None)
        self.generation += 1
        self._to, self._from = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        bridge.widen_pipe(self._to)
        self._unsent: list = []  # requests queued by post(), tickets _written on
        self._written = 0  # tickets (requests numbered in order) written so far
        self._replies: deque = deque()  # replies read, tickets _answered on
        self._answered = 0
        self._early: dict = {}  # ticket -> reply read before it was asked for
        self._dropped: set = set()  # tickets whose replies nobody will ask for
        self.open_policies = 0  # built here and not closed

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
            self.proc = None

    def stop(self) -> None:
        """Ask the child to close its policies and exit; kill it if it does
        not within 5 s, or if the wait is interrupted (Ctrl-C)."""
        try:
            if self.alive():
                bridge.send(self._to, [("exit",)])
                self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            self.kill()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def new_handle(self) -> int:
        self._handles += 1
        return self._handles

    def post(self, message) -> int:
        """Queue ``message``; returns its ticket for ``result``. The queue is
        written as one frame as soon as it holds a request of every open
        policy (an episode step's worth) while the child has answered all
        before (so it is waiting to read), else by the ``result`` that
        needs it."""
        self._unsent.append(message)
        ticket = self._written + len(self._unsent) - 1
        if (self.proc is not None and len(self._unsent) >= self.open_policies
                and self._answered + len(self._replies) == self._written):
            try:
                self._write()
            except BrokenPipeError:  # the child is gone: result() says how
                pass
        return ticket

    def _write(self) -> None:
        """Write the queue as one frame; anything but a closed pipe
        interrupting it kills the child (the pipe may be left mid-frame)."""
        unsent, self._unsent = self._unsent, []
        self._written += len(unsent)
        try:
            bridge.send(self._to, unsent)
        except BrokenPipeError:
            raise
        except BaseException:
            self.kill()
            raise

    def result(self, ticket: int, during: str):
        """The child's value for request ``ticket`` (its error as a
        PolicyProcessError). Any interruption (a capprof time limit included)
        leaves the pipe mid-message, so the child is killed and the
        exception goes on."""
        reply = self._early.pop(ticket, None)
        if reply is None:
            reply = self._wait(ticket, during)
        status, value = reply
        if status != "ok":
            raise PolicyProcessError(f"{value} (in {self.python})")
        return value

    def _wait(self, ticket: int, during: str):
        """Write the queue if ``ticket`` is in it, then read replies up to ``ticket``'s."""
        if self.proc is None:
            raise PolicyProcessError(self._death(during))
        try:
            if ticket >= self._written:
                self._write()
            deadline = time.monotonic() + WAIT_SECONDS
            while self._answered + len(self._replies) <= ticket:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select((self._from,), (), (), left)[0]:
                    self.kill()
                    raise PolicyProcessError(f"the policy interpreter {self.python} did not answer within "
                                             f"{WAIT_SECONDS:g} s during {during}; killed it")
                self._replies.extend(bridge.receive(self._from))
        except (EOFError, BrokenPipeError):
            self.proc.wait()
            message = self._death(during)
            self.kill()
            raise PolicyProcessError(message) from None
        except BaseException:
            self.kill()
            raise
        while True:
            answered, reply = self._answered, self._replies.popleft()
            self._answered += 1
            if answered == ticket:
                return reply
            if answered in self._dropped:
                self._dropped.discard(answered)
            else:
                self._early[answered] = reply

    def drop(self, ticket: int) -> None:
        """Nobody will ask for ticket's reply (a step sent ahead whose episode
        failed before it was collected)."""
        if self._early.pop(ticket, None) is None and ticket >= self._answered:
            self._dropped.add(ticket)

    def request(self, message, during: str):
        """Send ``message`` and return the child's value (see ``result``)."""
        if not self.alive():
            raise PolicyProcessError(self._death(during))
        return self.result(self.post(message), during)

    def _death(self, during: str) -> str:
        code = self.proc.poll() if self.proc is not None else None
        how = (f"was killed by signal {-code}" if code is not None and code < 0
               else f"exited with code {code}" if code is not None else "is not running")
        last = ""
        if self._stderr is not None:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 4096))
            last = _last_line(self._stderr.read().decode(errors="replace"))
        return f"the policy interpreter {self.python} {how} during {during}" + (f" ({last})" if last else "")


def bridge_process(python: str, context=None) -> BridgeProcess:
    """The child for ``python`` in ``context`` (default: the current
    ``ExecutionContext``, runners/context.py), started (or restarted) if
    needed. The context stops it when it closes: at the end of the run
    for ``execute()``, at interpreter exit outside any run."""
    context = context or current()
    process = context.bridges.get(python)
    if process is None:
        process = context.bridges[python] = BridgeProcess(python)
        context.at_close(process.stop)
    if not process.alive():
        process.start()
    return process


class RemotePolicy:
    """The meltingpot Policy protocol, answered by a policy in the child.

    ``step_ahead(timestep, state)`` (optional: the episode loop calls it for
    every bridged slot before it asks them for actions) queues the step's
    request, and the request of the child's last open policy sends the
    queue; ``step`` with the same timestep then collects the action. Without
    it, ``step`` does both. ``step_seconds`` is how long the policy's last
    step ran in the child."""

    def __init__(self, process: BridgeProcess, handle: int, name: str):
        self.process, self.handle, self.name = process, handle, name
        self.generation = process.generation
        self.step_seconds = 0.0
        self._steps = None
        self._ahead = None  # (timestep, its ticket or what encoding it raised)

    def initial_state(self):
        self._check_child()
        self.process.request(("initial", self.handle), f"{self.name}'s initial_state")
        self._steps = 0
        return 0

    def step_ahead(self, timestep, prev_state) -> None:
        """Queue this step's request. Never raises: ``step`` does."""
        self._forget_ahead()
        if self.process.generation == self.generation:
            try:
                self._ahead = (timestep, self.process.post(("step", self.handle, bridge.encode_timestep(timestep))))
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                self._ahead = (timestep, exc)

    def step(self, timestep, prev_state):
        if prev_state != self._steps:
            raise ValueError(f"{self.name}: step() was not given the state the previous step returned "
                             "(the policy's own state lives in its interpreter)")
        self._check_child()
        if self._ahead is None or self._ahead[0] is not timestep:
            self.step_ahead(timestep, prev_state)
        ticket, self._ahead = self._ahead[1], None
        if isinstance(ticket, BaseException):
            raise ticket
        action, self.step_seconds = self.process.result(ticket, f"{self.name}'s step")
        self._steps += 1
        return action, self._steps

    def close(self) -> None:
        self._forget_ahead()
        if self.process.generation == self.generation and self.process.alive():
            self.generation = -1
            self.process.open_policies -= 1
            self.process.request(("close", self.handle), f"{self.name}'s close")

    def _forget_ahead(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and type(ahead[1]) is int and self.process.generation == self.generation:
            self.process.drop(ahead[1])

    def _check_child(self) -> None:
        if self.process.generation != self.generation:
            raise PolicyProcessError(f"the policy interpreter {self.process.python} was restarted after a "
                                     f"failure; {self.name} was built in the old one")


def legacy_summary(spec: str, found: dict) -> str:
    """One line: what an ``rllib-legacy:`` spec plays (the bridge's
    description of the checkpoint), so the conversion capprof chose is seen."""
    policies = found["policies"]
    ids = [pid for pid in policies if pid]
    conversions = sorted({p["conversion"] for p in policies.values()})
    modes = sorted({"samples" if p["explore"] else "greedy" for p in policies.values()})
    who = (f"policies {ids[0]} .. {ids[-1]} ({len(ids)}), each focal slot its own id" if len(ids) > 1
           else f"policy {ids[0]} in every focal slot" if ids else "its policy in every focal slot")
    return (f"{spec}: {found['kind']} at {found['folder']}: {who}; {'/'.join(modes)}"
            f"{', batched' if any(p.get('batch') for p in policies.values()) else ''}; observation: "
            f"{' | '.join(conversions)}")


def check_legacy_covers(spec: str, found: dict, scenario) -> None:
    """One line unless the old-stack checkpoint the bridge described as
    ``found`` (``rllib_legacy.describe``) can fill every focal slot of
    ``scenario``: a policy for each focal slot's id (or one for all) with as
    many actions as the substrate has."""
    policies = found["policies"]
    checkpoint = spec[len(bridge.LEGACY_PREFIX):]
    if not found["one_for_all"]:
        focal_ids = [f"agent_{i}" for i, focal in enumerate(scenario.is_focal) if focal]
        missing = [pid for pid in focal_ids if pid not in policies]
        if missing:
            raise CapprofError(f"{spec}: scenario {scenario.name}'s focal players are {', '.join(focal_ids)}, but "
                               f"{found['folder']} holds policies {', '.join(policies)} only (no "
                               f"{', '.join(missing)}); name one policy for every slot with "
                               f"rllib-legacy:{checkpoint}:{next(iter(policies))}@PYTHON")
    actions = substrate_info(scenario.substrate).num_actions
    for pid, policy in policies.items():
        if policy["actions"] != actions:
            raise CapprofError(f"{spec}: {'policy ' + pid if pid else 'the policy'} has {policy['actions']} actions "
                               f"but {scenario.substrate} has {actions} (scenario {scenario.name}); it was trained "
                               "on another substrate")


class VenvSource:
    """Builds ``spec``'s policies in ``python``. ``check()`` (run by
    ``parse_population`` in the driver, once) proves the interpreter before
    any episode; workers build without repeating it."""

    def __init__(self, spec: str, python: str):
        self.spec, self.python = spec, python
        self.info = None

    def check(self) -> dict:
        if self.info is None:
            self.info = check_interpreter(self.python, self.spec)
            if self.spec.startswith(bridge.LEGACY_PREFIX):
                note(legacy_summary(self.spec, self.info["ok"]["legacy"]))
        return self.info

    def check_scenario(self, scenario) -> None:
        if self.spec.startswith(bridge.LEGACY_PREFIX):
            check_legacy_covers(self.spec, self.check()["ok"]["legacy"], scenario)
        if self.spec.startswith(bridge.SUBMISSION_PREFIX):
            from capprof.runners.populations.submission import check_roles

            found = self.check()["ok"]
            roles = {s: found["roles"].get(s) or {} for s in found["substrates"]}
            check_roles(self.spec[len(bridge.SUBMISSION_PREFIX):], roles, scenario)

    def build(self, info, seed: int, slot):
        process = bridge_process(self.python)
        handle = process.new_handle()
        name = f"{self.spec}@{self.python}"
        process.request(("build", handle, self.spec, info.name, slot.role, slot.policy_id, seed, os.getcwd()),
                        f"building {name}")
        process.open_policies += 1
        return RemotePolicy(process, handle, name)
