"""How capprof turns a member spec into a policy, in capprof's interpreter or another one.

This file is imported by capprof (``capprof.runners.bridge``) AND run by file
path in another Python environment (``/other/venv/bin/python bridge.py``) for
members written ``SPEC@PYTHON`` (see ``capprof.runners.venv_member``). So it
imports only the standard library at module level; the child also needs NumPy
and dm_env, to unpickle the timesteps it is sent. It runs on Python >= 3.8.

What it knows:

* ``load_target("pkg.module:Name" | "file.py[:Name]")``: a policy class or a
  function returning a policy;
* ``load_submission(DIR)``: a 2023-contest starter-kit directory
  (``DIR/my_policies/user_config.py`` defining ``SubmissionPolicies`` and
  ``SubmissionRoles``), imported with DIR on ``sys.path`` as the kit did;
* ``open_policy(factory, policy_id)``: builds ``factory(policy_id)`` when the
  constructor takes a positional argument, else ``factory()``, enters it if it
  is a context manager, and returns an :class:`Opened` whose ``close()`` exits
  it (meltingpot's ``Policy.__exit__`` calls ``close()``) or closes it;
* ``serve()``: the child's loop: builds policies on request and answers
  ``initial_state`` / ``step`` / ``close`` over length-prefixed pickles on its
  stdin / stdout. The policies' own prints go to stderr.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import json
import os
import pickle
import random
import re
import select
import struct
import sys
import time
from pathlib import Path

SUBMISSION_PREFIX = "submission:"
USER_CONFIG = os.path.join("my_policies", "user_config.py")
HEADER = struct.Struct("!Q")
# Seconds each side polls for the other's answer before sleeping (saves a
# wake-up per message when a core is free; on a loaded machine it only burns
# CPU: 0.2 ms made a round trip 4x slower at load 18 on 2 cores). Off unless
# $CAPPROF_BRIDGE_SPIN sets it.
SPIN_SECONDS = float(os.environ.get("CAPPROF_BRIDGE_SPIN", "0") or 0)


class SpecError(Exception):
    """A member spec that cannot be resolved; the message is one line naming the fix."""


def _did_you_mean(name, known) -> str:
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return ' (did you mean "%s"?)' % close[0] if close else ""


def one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return "%s: %s" % (type(exc).__name__, lines[0]) if lines else type(exc).__name__


# ------------------------------------------------------------ resolving specs


def _load_file(path: Path):
    module_name = "capprof_submission_" + re.sub(r"\W", "_", str(path.resolve()))
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            del sys.modules[module_name]
            raise SpecError("%s: importing it raised %s" % (path, one_line(exc))) from None
    return module


def _looks_like_policy(obj, module) -> bool:
    return (inspect.isclass(obj) and obj.__module__ == module.__name__ and not inspect.isabstract(obj)
            and callable(getattr(obj, "step", None)) and callable(getattr(obj, "initial_state", None)))


def load_target(spec: str):
    """The class or function ``spec`` names: ``package.module:Name``,
    ``path/to/file.py:Name`` or ``path/to/file.py`` (its only policy class:
    a class defining ``initial_state`` and ``step``)."""
    target, _, attr = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if target.endswith(".py") or "/" in target or (not attr and spec.endswith(".py")):
        path = Path(target if attr else spec).expanduser()
        if not path.exists():
            raise SpecError("policy file %s does not exist; check the path in --population" % path)
        module = _load_file(path)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise SpecError('cannot import "%s" (%s); put it on PYTHONPATH or pass a file path'
                            % (target, exc)) from None
        except BaseException as exc:
            raise SpecError("%s: importing it raised %s" % (target, one_line(exc))) from None
    if not attr:
        classes = [v for v in vars(module).values() if _looks_like_policy(v, module)]
        if len(classes) != 1:
            raise SpecError("%s: expected exactly one Policy class, found %d; name it as FILE.py:ClassName"
                            % (spec, len(classes)))
        return classes[0]
    if not hasattr(module, attr):
        names = [n for n in vars(module) if not n.startswith("_")]
        raise SpecError('%s: "%s" not found in %s%s' % (spec, attr, module.__name__, _did_you_mean(attr, names)))
    return getattr(module, attr)


class Submission:
    """A loaded starter-kit directory: ``policies`` (substrate -> Policy class)
    and ``roles`` (substrate -> {role: [policy ids]})."""

    def __init__(self, directory: str, policies: dict, roles: dict):
        self.directory, self.policies, self.roles = directory, policies, roles

    @property
    def substrates(self) -> list:
        return sorted(self.policies)

    def policy_class(self, substrate: str):
        if substrate not in self.policies:
            raise SpecError("submission %s does not cover substrate %s; it covers %s"
                            % (self.directory, substrate, ", ".join(self.substrates) or "none"))
        return self.policies[substrate]

    def policy_id(self, substrate: str, role: str, slot_policy_id: str, seed: int) -> str:
        """The id a focal slot of ``role`` plays as: the slot's own id
        (``agent_<player index>``) when SubmissionRoles allows it for the role,
        else one of the allowed ids drawn with ``seed``."""
        by_role = self.roles.get(substrate) or {}
        allowed = [str(i) for i in by_role.get(role, ())]
        if not allowed:
            raise SpecError("submission %s: SubmissionRoles[%r] allows no policy id for role %r; it lists roles %s"
                            % (self.directory, substrate, role, ", ".join(map(str, by_role)) or "none"))
        if slot_policy_id in allowed:
            return slot_policy_id
        return random.Random(seed).choice(allowed)


_SUBMISSIONS: dict = {}


def load_submission(directory: str) -> Submission:
    """Import ``DIR/my_policies/user_config.py`` with DIR on ``sys.path`` (as
    the kit's own evaluation does; removed again afterwards). Several
    submissions can be loaded in one process: each gets its own
    ``my_policies`` package. Cached per process."""
    root = Path(directory).expanduser().resolve()
    if str(root) in _SUBMISSIONS:
        return _SUBMISSIONS[str(root)]
    if not root.is_dir():
        raise SpecError("submission directory %s does not exist; give the starter-kit directory that holds "
                        "my_policies/user_config.py" % directory)
    if not (root / USER_CONFIG).is_file():
        raise SpecError("%s has no %s; a submission directory holds my_policies/user_config.py defining "
                        "SubmissionPolicies and SubmissionRoles" % (directory, USER_CONFIG))
    saved = {k: v for k, v in sys.modules.items() if k == "my_policies" or k.startswith("my_policies.")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(root))
    try:
        config = importlib.import_module("my_policies.user_config")
    except BaseException as exc:
        raise SpecError("%s: importing my_policies/user_config.py raised %s" % (directory, one_line(exc))) from None
    finally:
        sys.path.remove(str(root))
        for k in [k for k in sys.modules if k == "my_policies" or k.startswith("my_policies.")]:
            del sys.modules[k]
        sys.modules.update(saved)
    for name in ("SubmissionPolicies", "SubmissionRoles"):
        if not isinstance(getattr(config, name, None), dict):
            raise SpecError("%s/%s defines no %s dict; define %s (substrate -> %s)" % (
                directory, USER_CONFIG, name, name,
                "Policy class" if name == "SubmissionPolicies" else "{role: [policy ids]}"))
    found = Submission(str(directory), dict(config.SubmissionPolicies), dict(config.SubmissionRoles))
    _SUBMISSIONS[str(root)] = found
    return found


# ------------------------------------------------------------ building policies


def _takes_policy_id(factory) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(required) > 1:
        raise SpecError("%s's constructor needs %d arguments; capprof passes one (the policy id) or none"
                        % (getattr(factory, "__name__", factory), len(required)))
    return bool(positional) or any(p.kind == p.VAR_POSITIONAL for p in params)


class Opened:
    """A built policy with the meltingpot protocol whose ``close()`` exits it
    if it was entered as a context manager, else closes it; once only."""

    def __init__(self, policy, exit_fn):
        self.policy = policy
        self.initial_state = policy.initial_state
        self.step = policy.step  # bound directly: no extra call per step
        self._exit = exit_fn

    def close(self) -> None:
        exit_fn, self._exit = self._exit, None
        if exit_fn is not None:
            exit_fn()


def open_policy(factory, policy_id: str) -> Opened:
    """``factory(policy_id)`` if its constructor takes a positional argument,
    else ``factory()``; entered if it is a context manager."""
    built = factory(policy_id) if _takes_policy_id(factory) else factory()
    if hasattr(built, "__enter__") and hasattr(built, "__exit__"):
        entered = built.__enter__()
        policy, exit_fn = (built if entered is None else entered), lambda: built.__exit__(None, None, None)
    else:
        policy, exit_fn = built, getattr(built, "close", lambda: None)
    for method in ("initial_state", "step"):
        if not callable(getattr(policy, method, None)):
            exit_fn()
            raise TypeError("%s built a %s, which has no %s(); a policy needs initial_state, step and close"
                            % (getattr(factory, "__name__", factory), type(policy).__name__, method))
    return Opened(policy, exit_fn)


def build(spec: str, substrate: str, role: str, policy_id: str, seed: int) -> Opened:
    """The policy ``spec`` plays in a slot: ``submission:DIR`` plays its
    substrate's class under an id allowed for ``role``; other specs build
    their class or function with ``policy_id``."""
    if spec.startswith(SUBMISSION_PREFIX):
        submission = load_submission(spec[len(SUBMISSION_PREFIX):])
        cls = submission.policy_class(substrate)
        return open_policy(cls, submission.policy_id(substrate, role, policy_id, seed))
    return open_policy(load_target(spec), policy_id)


def describe(spec: str) -> dict:
    """What the parent checks before any episode: for a submission the
    substrates it covers and its roles; for others the target's name."""
    if spec.startswith(SUBMISSION_PREFIX):
        sub = load_submission(spec[len(SUBMISSION_PREFIX):])
        return {"substrates": sub.substrates,
                "roles": {str(s): {str(r): [str(i) for i in ids] for r, ids in (roles or {}).items()}
                          for s, roles in sub.roles.items()}}
    target = load_target(spec)
    return {"target": getattr(target, "__qualname__", repr(target))}


# ------------------------------------------------------------ the child process


def encode_timestep(timestep) -> tuple:
    """A timestep as plain values: arrays as (dtype, shape, bytes), which
    pickle copies as one block (faster than pickling the arrays themselves)."""
    observation = []
    for key, value in timestep.observation.items():
        if type(value).__name__ == "ndarray":
            observation.append((key, value.dtype.str, value.shape, value.tobytes()))
        else:
            observation.append((key, None, None, value))
    return int(timestep.step_type), timestep.reward, timestep.discount, observation


def decode_timestep(encoded):
    """The dm_env.TimeStep ``encode_timestep`` described (writable arrays)."""
    import dm_env
    import numpy as np

    step_type, reward, discount, observation = encoded
    return dm_env.TimeStep(dm_env.StepType(step_type), reward, discount, {
        key: np.frombuffer(bytearray(raw), dtype).reshape(shape) if dtype is not None else raw
        for key, dtype, shape, raw in observation})


def send(fd: int, message) -> None:
    """One length-prefixed pickle, written with one system call when it fits the pipe."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view):]


def receive(fd: int, spin: float = 0.0):
    """The next message on ``fd`` (EOFError when the other side is gone).
    Messages alternate with replies, so nothing follows a message in the
    pipe: reading up to 256 KB gets a whole step's message in one call.
    With ``spin`` (seconds), poll that long before sleeping in ``read``: an
    answer that comes within it costs no wake-up of this process."""
    if spin:
        deadline = time.perf_counter() + spin
        while not select.select((fd,), (), (), 0)[0] and time.perf_counter() < deadline:
            pass
    data = os.read(fd, 1 << 18)
    if not data:
        raise EOFError
    while len(data) < HEADER.size:
        more = os.read(fd, HEADER.size - len(data))
        if not more:
            raise EOFError
        data += more
    (size,) = HEADER.unpack_from(data)
    end = HEADER.size + size
    if len(data) < end:
        chunks, have = [data], len(data)
        while have < end:
            more = os.read(fd, min(end - have, 1 << 20))
            if not more:
                raise EOFError
            chunks.append(more)
            have += len(more)
        data = b"".join(chunks)
    return pickle.loads(memoryview(data)[HEADER.size:end])


def serve(fd_in: int, fd_out: int) -> None:
    """Answer requests until ``exit`` or end of input. Requests are tuples:
    ``("build", handle, spec, substrate, role, policy_id, seed)``,
    ``("initial", handle)``, ``("step", handle, encode_timestep(timestep))``,
    ``("close", handle)``, ``("describe", spec)``, ``("exit",)``. Replies are
    ``("ok", value)`` or ``("error", one line)``. Each policy's recurrent
    state stays here; the parent holds only a token."""
    policies, states = {}, {}
    while True:
        try:
            request = receive(fd_in, spin=SPIN_SECONDS)
        except EOFError:
            break
        kind = request[0]
        try:
            if kind == "step":
                handle = request[1]
                action, states[handle] = policies[handle].step(decode_timestep(request[2]), states[handle])
                try:
                    action = int(action) if int(action) == action else repr(action)
                except (TypeError, ValueError):
                    action = repr(action)
                reply = ("ok", action)
            elif kind == "initial":
                states[request[1]] = policies[request[1]].initial_state()
                reply = ("ok", None)
            elif kind == "build":
                _, handle, spec, substrate, role, policy_id, seed = request
                # Policies may use the global generators: seeded per build, as
                # capprof seeds its own per episode.
                random.seed(seed)
                sys.modules["numpy"].random.seed(seed % 2**32)
                policies[handle] = build(spec, substrate, role, policy_id, seed)
                reply = ("ok", None)
            elif kind == "close":
                states.pop(request[1], None)
                policy = policies.pop(request[1], None)
                if policy is not None:
                    policy.close()
                reply = ("ok", None)
            elif kind == "describe":
                reply = ("ok", describe(request[1]))
            elif kind == "exit":
                send(fd_out, ("ok", None))
                break
            else:
                reply = ("error", "unknown request %r" % (kind,))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a policy's SystemExit too: the parent decides
            reply = ("error", one_line(exc))
        send(fd_out, reply)
    for policy in policies.values():
        try:
            policy.close()
        except Exception:
            pass


def _check_imports() -> str | None:
    missing = []
    for name in ("numpy", "dm_env"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        return "%s lacks %s; install them there: %s -m pip install numpy dm-env" % (
            sys.executable, " and ".join(missing), sys.executable)
    return None


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Run by file path, Python put capprof's runners/ folder first on sys.path;
    # the member must not import capprof's modules by accident.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    # The protocol owns the original stdin / stdout; the policies' prints go to stderr.
    fd_in, fd_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    if argv[:1] == ["--check"]:
        # One JSON line: the interpreter has numpy and dm_env, and the spec resolves.
        problem = _check_imports()
        result = {"error": problem} if problem else {}
        if not problem:
            try:
                result = {"ok": describe(argv[1]), "prefix": sys.prefix}
            except SpecError as exc:
                result = {"error": str(exc)}
            except BaseException as exc:
                result = {"error": "%s: %s" % (argv[1], one_line(exc))}
        os.write(fd_out, (json.dumps(result) + "\n").encode())
        return 0
    problem = _check_imports()
    if problem:
        sys.stderr.write(problem + "\n")
        return 3
    serve(fd_in, fd_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
