"""How capprof turns a member spec into a policy, in capprof's interpreter or another one.

This file is imported by capprof (``capprof.runners.populations.bridge``) AND run by file
path in another Python environment (``/other/venv/bin/python bridge.py``) for
members written ``SPEC@PYTHON`` (see ``capprof.runners.populations.venv_member``). So it
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
  ``initial_state`` / ``step`` / ``close`` over frames on its stdin / stdout
  (``frame``: a pickled list of requests or replies, arrays as out-of-band
  buffers). The policies' own prints go to stderr. What the loop holds (the
  policies, the submissions it loaded, an open /proc/loadavg) belongs to
  the ``Server`` it runs, released when it ends.
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
LEGACY_PREFIX = "rllib-legacy:"  # an old-API-stack RLlib checkpoint (rllib_legacy.py)
USER_CONFIG = os.path.join("my_policies", "user_config.py")
# The child holds a reply back while the next request is already here and is
# a step of the same spec, and the steps whose replies wait, with that one,
# took less than this together the last time each ran: the replies then go
# out together (one wake-up of the parent per episode step instead of one per
# player; the parent needs every action before the substrate steps, so it
# loses nothing by waiting), each delayed by about that at most. Until
# 2026-12-03 each step had to be under 2 ms, so a contest policy's 5 ms steps
# woke the parent once per player. $CAPPROF_BRIDGE_HOLD_SECONDS sets it (0:
# never hold; keep it well under --step-timeout).
HOLD_SECONDS = float(os.environ.get("CAPPROF_BRIDGE_HOLD_SECONDS", "0.05") or 0)
# Seconds the child polls for the parent's next frame before it sleeps in
# ``read``, while the machine has a CPU free (no more running tasks than
# CPUs): on the 2-core test machine, being woken after sleeping through the
# parent's substrate step cost ~0.3-0.6 ms per episode step, and polling a
# free CPU costs nobody; a busy machine gets no polling. (The parent, whose
# waits are short, sleeps: polling there too measured no better.)
# $CAPPROF_BRIDGE_SPIN sets it (0: never poll).
SPIN_SECONDS = float(os.environ.get("CAPPROF_BRIDGE_SPIN", "0.005") or 0)


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
        if path.is_dir():
            raise SpecError("%s is a directory, not a policy file; give FILE.py[:Class], or a directory as "
                            "rllib:DIR (a checkpoint) or submission:DIR (a contest submission)" % path)
        if path.suffix != ".py":
            raise SpecError("%s is not a Python file (.py); a policy file is FILE.py[:Class]" % path)
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


POLICY_MODULE = "meltingpot.utils.policies.policy"


def provide_policy_base() -> bool:
    """Where meltingpot is not installed (the contest's Python 3.10
    environment), provide ``meltingpot.utils.policies.policy.Policy``, the
    abstract base the kit's policies subclass, and nothing else: the package
    modules have no other names and no submodules. True when provided."""
    try:
        importlib.import_module(POLICY_MODULE)
        return False
    except ImportError:
        pass
    import abc
    import types
    import typing

    State = typing.TypeVar("State")

    class Policy(typing.Generic[State], metaclass=abc.ABCMeta):
        """meltingpot's Policy interface (provided by capprof's bridge)."""

        @abc.abstractmethod
        def initial_state(self):
            """The initial state of the agent."""

        @abc.abstractmethod
        def step(self, timestep, prev_state):
            """(action, next state) for ``timestep``."""

        @abc.abstractmethod
        def close(self):
            """Closes the policy."""

        def __enter__(self):
            return self

        def __exit__(self, *args):
            self.close()

    parts = POLICY_MODULE.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        module = sys.modules.get(name) or types.ModuleType(name)
        if i < len(parts):
            module.__path__ = []  # a package with no submodules of its own
        sys.modules[name] = module
        if i > 1:
            setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], module)
    Policy.__module__ = POLICY_MODULE
    sys.modules[POLICY_MODULE].Policy = Policy
    sys.modules[POLICY_MODULE].State = State
    return True


def load_submission(directory: str, loaded: dict | None = None) -> Submission:
    """Import ``DIR/my_policies/user_config.py`` with DIR on ``sys.path`` (as
    the kit's own evaluation does; removed again afterwards). Several
    submissions can be loaded in one process: each gets its own
    ``my_policies`` package. ``loaded`` (resolved directory -> Submission,
    e.g. the child's ``Server.submissions``) keeps what was loaded, so a
    directory is imported once per holder."""
    root = Path(directory).expanduser().resolve()
    if loaded is not None and str(root) in loaded:
        return loaded[str(root)]
    if root.exists() and not root.is_dir():
        raise SpecError("submission %s is a file; give the starter-kit directory that holds "
                        "my_policies/user_config.py" % directory)
    if not root.is_dir():
        raise SpecError("submission directory %s does not exist; give the starter-kit directory that holds "
                        "my_policies/user_config.py" % directory)
    if not (root / USER_CONFIG).is_file():
        raise SpecError("%s has no %s; a submission directory holds my_policies/user_config.py defining "
                        "SubmissionPolicies and SubmissionRoles" % (directory, USER_CONFIG))
    provide_policy_base()
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
    _check_submission_config(directory, config.SubmissionPolicies, config.SubmissionRoles)
    found = Submission(str(directory), dict(config.SubmissionPolicies), dict(config.SubmissionRoles))
    if loaded is not None:
        loaded[str(root)] = found
    return found


_POLICY_ID = re.compile(r"agent_[0-9]+")


def _check_submission_config(directory, policies: dict, roles: dict) -> None:
    """SpecError naming the first bad key or value of SubmissionPolicies /
    SubmissionRoles, and what is allowed there."""
    where = "%s/%s" % (directory, USER_CONFIG)
    for substrate, cls in policies.items():
        if not isinstance(substrate, str):
            raise SpecError("%s: SubmissionPolicies key %r is a %s; keys are substrate names (str)"
                            % (where, substrate, type(substrate).__name__))
        if not callable(cls):
            raise SpecError("%s: SubmissionPolicies[%r] is %r (a %s); give a Policy class (or a function "
                            "returning a policy), not its name" % (where, substrate, cls, type(cls).__name__))
    for substrate, by_role in roles.items():
        if not isinstance(substrate, str):
            raise SpecError("%s: SubmissionRoles key %r is a %s; keys are substrate names (str)"
                            % (where, substrate, type(substrate).__name__))
        if not isinstance(by_role, dict):
            raise SpecError("%s: SubmissionRoles[%r] is %r (a %s); give a dict {role: [policy ids]}, "
                            "e.g. {'default': ['agent_0']}" % (where, substrate, by_role, type(by_role).__name__))
        for role, ids in by_role.items():
            if not isinstance(role, str):
                raise SpecError("%s: SubmissionRoles[%r] has role %r (a %s); roles are the substrate's role "
                                "names (str)" % (where, substrate, role, type(role).__name__))
            if isinstance(ids, (str, bytes)) or not isinstance(ids, (list, tuple, set, frozenset)):
                raise SpecError("%s: SubmissionRoles[%r][%r] is %r (a %s); give a list of policy ids, "
                                "e.g. ['agent_0', 'agent_1']" % (where, substrate, role, ids, type(ids).__name__))
            for policy_id in ids:
                if not isinstance(policy_id, str) or not _POLICY_ID.fullmatch(policy_id):
                    raise SpecError("%s: SubmissionRoles[%r][%r] lists policy id %r; ids are agent_<player "
                                    "index> (agent_0, agent_1, ...)" % (where, substrate, role, policy_id))
    missing = sorted(set(policies) - set(roles))
    if missing:
        raise SpecError("%s: SubmissionRoles has no entry for %s; give each substrate in SubmissionPolicies "
                        "its {role: [policy ids]}" % (where, ", ".join(missing)))


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


def legacy_module():
    """``rllib_legacy.py`` beside this file (``rllib-legacy:`` members), loaded
    by file path: the child has no capprof install."""
    return _load_file(Path(__file__).resolve().with_name("rllib_legacy.py"))


def _legacy(call, *args):
    """``call`` of the legacy module, its CheckpointError as a SpecError."""
    module = legacy_module()
    try:
        return getattr(module, call)(*args)
    except module.CheckpointError as exc:
        raise SpecError(str(exc)) from None


def build(spec: str, substrate: str, role: str, policy_id: str, seed: int, submissions: dict | None = None
          ) -> Opened:
    """The policy ``spec`` plays in a slot: ``submission:DIR`` plays its
    substrate's class under an id allowed for ``role``; ``rllib-legacy:``
    the checkpoint's policy for ``policy_id``; other specs build their class
    or function with ``policy_id``. ``submissions``: loaded submissions to
    reuse and add to (``load_submission``)."""
    if spec.startswith(LEGACY_PREFIX):
        policy = _legacy("build", spec, policy_id, seed)
        return Opened(policy, policy.close)
    if spec.startswith(SUBMISSION_PREFIX):
        submission = load_submission(spec[len(SUBMISSION_PREFIX):], submissions)
        cls = submission.policy_class(substrate)
        return open_policy(cls, submission.policy_id(substrate, role, policy_id, seed))
    return open_policy(load_target(spec), policy_id)


def describe(spec: str, submissions: dict | None = None) -> dict:
    """What the parent checks before any episode: for a submission the
    substrates it covers and its roles; for ``rllib-legacy:`` the checkpoint's
    policies (``rllib_legacy.describe``); for others the target's name.
    ``submissions`` as for ``build``."""
    if spec.startswith(LEGACY_PREFIX):
        return {"legacy": _legacy("describe", spec)}
    if spec.startswith(SUBMISSION_PREFIX):
        sub = load_submission(spec[len(SUBMISSION_PREFIX):], submissions)
        return {"substrates": sub.substrates,
                "roles": {str(s): {str(r): [str(i) for i in ids] for r, ids in (roles or {}).items()}
                          for s, roles in sub.roles.items()}}
    target = load_target(spec)
    return {"target": getattr(target, "__qualname__", repr(target))}


# ------------------------------------------------------------ the pipes

# A frame: FRAME (the pickle's size, the number of out-of-band buffers), the
# size of each buffer ("!Q" each), the pickle (protocol 5), the buffers.
# Arrays are such buffers: written from the array and read into a
# bytearray of their own, without a copy in Python on either side.
FRAME = struct.Struct("!QI")
IOV_MAX = 1024  # buffers per readv / writev call (Linux's limit)


def frame(message) -> list:
    """``message`` as the buffers of one frame (for ``write``)."""
    buffers = []
    data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    raws = [buffer.raw() for buffer in buffers]
    return [FRAME.pack(len(data), len(raws)) + struct.pack("!%dQ" % len(raws), *(r.nbytes for r in raws)),
            data, *raws]


def write(fd: int, buffers: list) -> None:
    """Write ``buffers`` to ``fd``: one system call unless the pipe is full
    or a signal interrupts it."""
    views = [memoryview(b) for b in buffers]
    while views:
        done = os.writev(fd, views[:IOV_MAX])
        while views and done >= views[0].nbytes:
            done -= views[0].nbytes
            views.pop(0)
        if done:
            views[0] = views[0][done:]


def send(fd: int, message) -> None:
    """Write ``message`` as one frame."""
    write(fd, frame(message))


def _read_into(fd: int, buffers: list) -> None:
    """Fill ``buffers`` from ``fd`` (one ``readv`` when the data is there); EOFError at the end of input."""
    views = [memoryview(b) for b in buffers if len(b)]
    while views:
        done = os.readv(fd, views[:IOV_MAX])
        if not done:
            raise EOFError
        while views and done >= views[0].nbytes:
            done -= views[0].nbytes
            views.pop(0)
        if done:
            views[0] = views[0][done:]


def receive(fd: int):
    """The next message on ``fd`` (EOFError when the other side is gone).
    Its out-of-band buffers are read straight into buffers of their own:
    NumPy byte arrays when NumPy is imported (not zeroed first), else
    bytearrays."""
    head = bytearray(FRAME.size)
    _read_into(fd, [head])
    size, count = FRAME.unpack(head)
    meta = bytearray(8 * count + size)
    _read_into(fd, [meta])
    np = sys.modules.get("numpy")
    new = bytearray if np is None else lambda n: np.empty(n, np.uint8)
    buffers = [new(n) for n in struct.unpack_from("!%dQ" % count, meta)]
    _read_into(fd, buffers)
    return pickle.loads(memoryview(meta)[8 * count:], buffers=buffers)


def readable(fd: int) -> bool:
    """Whether ``fd`` has data to read now (the other side writes whole frames at once)."""
    return bool(select.select((fd,), (), (), 0)[0])


class CpuGauge:
    """Whether no more tasks are running than this process may use CPUs
    (Linux: /proc/loadavg, opened at the first ``free()`` and kept open
    until ``close()``, as it is read before every wait; False elsewhere)."""

    def __init__(self):
        self._fd = None
        self._cpus = 0
        self._tried = False

    def free(self) -> bool:
        if not self._tried:
            self._tried = True
            try:
                self._fd = os.open("/proc/loadavg", os.O_RDONLY)
                self._cpus = len(os.sched_getaffinity(0))
            except (OSError, AttributeError):
                self.close()
        if self._fd is None:
            return False
        running = int(os.pread(self._fd, 64, 0).split()[3].split(b"/")[0])
        return running <= self._cpus

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_readable(fd: int, seconds: float = SPIN_SECONDS, cpus: CpuGauge | None = None) -> None:
    """Before a blocking read: poll ``fd`` for up to ``seconds`` while a CPU
    is free (by ``cpus``; without it, by a gauge opened for this call),
    yielding the CPU between polls (so a task that needs it gets it), so
    that a message that comes soon finds this process awake."""
    if seconds and cpus is None:
        with CpuGauge() as gauge:
            return wait_readable(fd, seconds, gauge)
    if seconds and cpus.free():
        deadline = time.perf_counter() + seconds
        while not select.select((fd,), (), (), 0)[0] and time.perf_counter() < deadline:
            os.sched_yield()


def widen_pipe(fd: int, size: int = 1 << 20) -> None:
    """Ask for a pipe buffer of ``size`` bytes on ``fd`` (Linux; at most
    /proc/sys/fs/pipe-max-size, 1 MB by default), so that an episode step's
    requests go into the pipe in one write without waiting for the reader."""
    if sys.platform.startswith("linux"):
        import fcntl

        try:
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
        except OSError:
            pass


# ------------------------------------------------------------ the child process


def _encode(value, np) -> tuple:
    """A NumPy array or scalar as (dtype, shape or None for a scalar, its
    buffer, sent out of band; see ``frame``); other values as (None, None,
    value). Pickling the NumPy objects themselves would cost ~15 us each
    (the 0-d reward arrays too) and need the same NumPy on both sides."""
    if type(value) is np.ndarray and not value.dtype.hasobject:
        return value.dtype.str, value.shape, pickle.PickleBuffer(value if value.flags.c_contiguous else value.copy())
    if isinstance(value, np.generic) and not value.dtype.hasobject:
        return value.dtype.str, None, pickle.PickleBuffer(np.asarray(value))
    return None, None, value


def _decode(dtype, shape, raw, np):
    """What ``_encode`` described, arrays on the buffers ``receive`` read
    them into (writable, their own, also when the sender's were read-only:
    pickle then hands a read-only view of the buffer)."""
    if dtype is None:
        return raw
    if type(raw) is memoryview:
        raw = raw.obj
    array = raw.view(dtype) if type(raw) is np.ndarray else np.frombuffer(raw, dtype)
    return array[0] if shape is None else array.reshape(shape)


def encode_timestep(timestep) -> tuple:
    """A timestep as plain values, its arrays and NumPy scalars as buffers."""
    import numpy as np

    return (int(timestep.step_type), _encode(timestep.reward, np), _encode(timestep.discount, np),
            [(key, *_encode(value, np)) for key, value in timestep.observation.items()])


def decode_timestep(encoded):
    """The dm_env.TimeStep ``encode_timestep`` described."""
    import dm_env
    import numpy as np

    step_type, reward, discount, observation = encoded
    return dm_env.TimeStep(_STEP_TYPES[step_type], _decode(*reward, np), _decode(*discount, np),
                           {key: _decode(dtype, shape, raw, np) for key, dtype, shape, raw in observation})


class _StepTypes(dict):
    """dm_env.StepType by value, looked up once (calling the enum costs ~1 us)."""

    def __missing__(self, value):
        import dm_env

        self[value] = dm_env.StepType(value)
        return self[value]


_STEP_TYPES = _StepTypes()


def serve(fd_in: int, fd_out: int) -> None:
    """Answer requests, in order, until ``exit`` or end of input. A frame
    from the parent holds a list of requests, tuples:
    ``("build", handle, spec, substrate, role, policy_id, seed)``,
    ``("initial", handle)``, ``("step", handle, encode_timestep(timestep))``,
    ``("close", handle)``, ``("describe", spec)``, ``("exit",)``. A frame
    back holds a list of replies, one per request, in order: ``("ok",
    value)`` or ``("error", one line)``; a step's value is ``(action,
    seconds its policy took)``. A reply waits for the next one only while
    the next request is already here and is a step of the same spec, and the
    held steps with it took less than ``HOLD_SECONDS`` together (by their
    previous durations), so the parent wakes once for all the steps of an
    episode step. Each policy's recurrent state stays here; the parent holds
    only a token. Whatever the child holds (``Server``) is released when it
    returns."""
    server = Server(fd_in, fd_out)
    try:
        server.serve()
    finally:
        server.close()


def _action_value(action):
    """The action as the parent reads it: an int when it is one, else its repr."""
    try:
        return int(action) if int(action) == action else repr(action)
    except (TypeError, ValueError):
        return repr(action)


class Server:
    """The child's state while it serves: the policies by handle, their
    specs, recurrent states and last step's seconds; the submissions loaded
    (directory -> ``Submission``, so each is imported once); the CPU gauge
    read before each wait; the requests read and not yet answered and the
    replies not yet written; the directory each policy runs in.

    One child serves every member of its interpreter, so the working
    directory is per policy: a spec's relative paths are read against the
    parent's working directory (sent with each build; ``start``), and a
    submission's policy is built and stepped in its own root, as the kit's
    evaluation ran it."""

    def __init__(self, fd_in: int, fd_out: int):
        self.fd_in, self.fd_out = fd_in, fd_out
        self.policies, self.specs, self.states, self.took = {}, {}, {}, {}
        self.start = self.cwd = os.getcwd()
        self.homes: dict = {}  # handle -> the directory its policy runs in
        self.submissions: dict = {}
        self.cpus = CpuGauge()
        self.requests, self.replies = [], []  # requests: reversed (the next is last)
        self.held = 0.0  # seconds the steps whose replies wait in ``replies`` took
        self.last = None  # the policy of the last reply
        self.done = False  # ``exit`` was answered
        self.handlers = {"step": self.step, "initial": self.initial, "build": self.build, "close": self.close_one,
                         "describe": self.describe, "exit": self.exit}

    def serve(self) -> None:
        """The loop: the next request, the replies held so far written unless
        its reply may join them, then its reply (see ``serve``)."""
        while True:
            request = self.next_request()
            if request is None:
                return
            kind = request[0]
            if self.replies and not self.may_hold(request):
                self.flush()
            self.last = request[1] if kind == "step" else None
            if kind == "step":
                group = _batchable(request, self.requests, self.policies)
                if len(group) > 1:
                    self.replies.extend(self.step_group(group))
                    self.held += sum(self.took.get(r[1], 0.0) for r in group)
                    self.last = group[-1][1]
                    continue
            reply = self.answer(request)
            if self.done:
                return
            self.replies.append(reply)

    def next_request(self):
        """The next request; when none is left, the held replies go out
        (unless the parent's next frame is already here) and the next frame
        is read. None at the end of input."""
        if not self.requests:
            try:
                if self.replies and not readable(self.fd_in):  # about to wait for the parent
                    self.flush()
                wait_readable(self.fd_in, cpus=self.cpus)
                self.requests = receive(self.fd_in)
            except EOFError:
                return None
            self.requests.reverse()
        return self.requests.pop()

    def may_hold(self, request) -> bool:
        """Whether the replies waiting may wait for ``request``'s too: only
        for quick steps of the same spec, so that a step that hangs or kills
        the child is blamed on the same spec. (A policy's first step counts
        as HOLD_SECONDS: it may load lazily.)"""
        return (request[0] == "step" and self.held + self.took.get(request[1], HOLD_SECONDS) < HOLD_SECONDS
                and self.specs.get(request[1]) == self.specs.get(self.last))

    def flush(self) -> None:
        send(self.fd_out, self.replies)
        self.replies, self.held = [], 0.0

    def answer(self, request) -> tuple:
        """``request``'s reply: its handler's, or its exception as one line."""
        handler = self.handlers.get(request[0])
        try:
            if handler is None:
                return ("error", "unknown request %r" % (request[0],))
            return handler(request)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a policy's SystemExit too: the parent decides
            return ("error", one_line(exc))

    def step(self, request) -> tuple:
        handle = request[1]
        timestep = decode_timestep(request[2])
        self.enter(self.homes.get(handle, self.start))
        began = time.perf_counter()
        action, self.states[handle] = self.policies[handle].step(timestep, self.states[handle])
        self.took[handle] = seconds = time.perf_counter() - began
        self.held += seconds
        return ("ok", (_action_value(action), seconds))

    def enter(self, directory: str) -> None:
        """Work in ``directory`` (a syscall only when it changes)."""
        if directory != self.cwd:
            os.chdir(directory)
            self.cwd = directory

    def initial(self, request) -> tuple:
        self.enter(self.homes.get(request[1], self.start))
        self.states[request[1]] = self.policies[request[1]].initial_state()
        return ("ok", None)

    def build(self, request) -> tuple:
        _, handle, spec, substrate, role, policy_id, seed, *parent = request
        # the parent's working directory now (the child may have been started
        # from another one by an earlier run in the same process)
        self.start = parent[0] if parent else self.start
        # Policies may use the global generators: seeded per build, as
        # capprof seeds its own per episode.
        random.seed(seed)
        sys.modules["numpy"].random.seed(seed % 2**32)
        self.enter(self.start)  # the spec's relative paths are the parent's
        home = self.start
        if spec.startswith(SUBMISSION_PREFIX):
            # The kit's evaluation ran from the submission root: its
            # policies read files by relative paths.
            home = os.path.abspath(os.path.expanduser(spec[len(SUBMISSION_PREFIX):]))
            spec = SUBMISSION_PREFIX + home
            self.enter(home)
        self.policies[handle] = build(spec, substrate, role, policy_id, seed, self.submissions)
        self.specs[handle], self.homes[handle] = spec, home
        return ("ok", None)

    def close_one(self, request) -> tuple:
        for table in (self.states, self.took, self.specs):
            table.pop(request[1], None)
        home = self.homes.pop(request[1], self.start)
        policy = self.policies.pop(request[1], None)
        if policy is not None:
            self.enter(home)
            policy.close()
        return ("ok", None)

    def describe(self, request) -> tuple:
        self.enter(self.start)  # the spec's relative paths are the parent's
        return ("ok", describe(request[1], self.submissions))

    def exit(self, request) -> None:
        send(self.fd_out, [("ok", None)])
        self.done = True

    def step_group(self, group: list) -> list:
        """One ``step_batch`` call for the step requests of ``group`` (one
        forward pass of their shared model); a reply per request, each with
        an equal share of the time; an exception is every request's error."""
        handles = [request[1] for request in group]
        try:
            timesteps = [decode_timestep(request[2]) for request in group]
            members = [self.policies[h].policy for h in handles]
            began = time.perf_counter()
            results = type(members[0]).step_batch(members, timesteps, [self.states[h] for h in handles])
            seconds = (time.perf_counter() - began) / len(group)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            return [("error", one_line(exc))] * len(group)
        replies = []
        for h, (action, state) in zip(handles, results):
            self.states[h], self.took[h] = state, seconds
            replies.append(("ok", (int(action), seconds)))
        return replies

    def close(self) -> None:
        """Close the policies still open (quietly: the parent is done with
        them) and the gauge."""
        policies, self.policies = list(self.policies.values()), {}
        for policy in policies:
            try:
                policy.close()
            except Exception:
                pass
        self.cpus.close()


def _batch_key(policies: dict, handle):
    """What a policy that can step together with others shares with them
    (``batch_key()``: e.g. one legacy RLlib policy in several slots), or None."""
    opened = policies.get(handle)
    key = getattr(getattr(opened, "policy", None), "batch_key", None)
    return key() if key is not None else None


def _batchable(request, requests: list, policies: dict) -> list:
    """``request`` and the step requests right after it (``requests`` is
    reversed: the next is last) whose policies share its batch key; those
    are taken off ``requests``."""
    key = _batch_key(policies, request[1])
    group = [request]
    while key is not None and requests and requests[-1][0] == "step" and _batch_key(policies, requests[-1][1]) == key:
        group.append(requests.pop())
    return group


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
