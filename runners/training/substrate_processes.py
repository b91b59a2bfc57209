"""The substrates a training sampler steps, in its own process or spread
over worker processes.

A substrate step (dmlab2d's advance, its observations, meltingpot's
wrappers) and a reset (meltingpot rebuilds the lab2d environment, ~0.9 s on
commons_harvest__open) are most of what training costs, and they run in
C++ behind the GIL: with the substrates in worker processes they step on
every core at once while the sampler's process waits, and the observation
conversion (``ObsConvention.convert_many``) runs there too, so only the
small converted views cross the pipe.

A worker also uses the time its parent leaves it idle (the learner's update,
between sampling rounds) to build and start, ahead of time, the lab2d
environment each substrate's next reset would build (``PreparedReset``):
the reset itself then only swaps it in. It is the environment the reset
would have built (the same seed, drawn in the same order), so the episodes
are the same whether a reset was prepared or not.

Both kinds present one interface: ``num_actions``, ``obs``, ``restart_all()`` and
``advance(actions, active)``, which steps the ``active`` substrates, and
restarts at once any whose episode ended (terminated by the substrate, or
truncated at ``max_steps``), returning the ended episode's last views
beside the restarted one's first. Substrate ``k`` owns rows ``k * players``
.. ``(k + 1) * players - 1`` of ``obs``.
"""

from __future__ import annotations

import multiprocessing
import signal
import traceback
from dataclasses import dataclass

import numpy as np

from capprof.errors import CapprofError


def num_actions(env) -> int:
    """How many actions the substrate's players choose from (all alike)."""
    return int(env.action_spec()[0].num_values)


@dataclass(frozen=True)
class Ended:
    """Substrate ``k``'s episode ended on this step: ``terminated`` by the
    substrate (else truncated at ``max_steps``); ``final`` its players'
    last views (``obs`` already holds the restarted episode's first)."""

    k: int
    terminated: bool
    final: np.ndarray


def _reset_wrapper(env):
    """meltingpot's ``ResetWrapper`` inside ``env`` (capprof's and
    meltingpot's wrappers hold what they wrap as ``_substrate`` or
    ``_env``), or None (e.g. a substrate that is not meltingpot's)."""
    try:
        from meltingpot.utils.substrates.wrappers.reset_wrapper import ResetWrapper
    except ImportError:
        return None
    for _ in range(16):
        if isinstance(env, ResetWrapper):
            # what PreparedReset relies on (meltingpot 2.4's ResetWrapper)
            if all(hasattr(env, name) for name in ("_env", "_reset", "_rebuild_environment")):
                return env
            return None
        env = getattr(env, "_substrate", None) or getattr(env, "_env", None)
        if env is None:
            return None
    return None


class PreparedReset:
    """A substrate's next reset, built and started ahead of time.

    meltingpot's ``ResetWrapper`` rebuilds the lab2d environment on every
    reset after the first (``_rebuild_environment``: the next seed of the
    substrate's seed sequence, a new ``dmlab2d.Environment``, ~0.5 s) and
    starts it (``reset``, ~0.8 s). ``prepare()`` does both now; the
    wrapper's next reset then closes the old environment, swaps the prepared
    one in and returns its first timestep, as its own reset would have (the
    seed sequence is drawn only by rebuilds, so the order, and with it every
    episode, is unchanged). ``prepare()`` before the first reset (which does
    not rebuild) does nothing."""

    def __init__(self, wrapper):
        self.wrapper = wrapper
        self.ready = None  # (environment, its first timestep)
        self.used = 0  # resets that swapped a prepared environment in
        self._rebuilding_reset = wrapper.reset  # meltingpot's own
        wrapper.reset = self.reset  # the instance's reset: its outer wrappers call it

    @property
    def due(self) -> bool:
        """Whether the next reset rebuilds and nothing is prepared yet."""
        return self.ready is None and bool(self.wrapper._reset)

    def prepare(self) -> None:
        if self.due:
            fresh = self.wrapper._rebuild_environment()
            self.ready = (fresh, fresh.reset())

    def reset(self, *args, **kwargs):
        if self.ready is None or args or kwargs:
            return self._rebuilding_reset(*args, **kwargs)
        (fresh, first), self.ready = self.ready, None
        self.used += 1
        self.wrapper._env.close()
        self.wrapper._env = fresh
        return first

    def close(self) -> None:
        if self.ready is not None:
            self.ready[0].close()
            self.ready = None


class LocalSubstrates:
    """Substrates stepped in this process. ``prepare_reset()`` builds and
    starts one substrate's next reset ahead of time (``PreparedReset``); the
    worker processes call it while their parent leaves them idle."""

    def __init__(self, envs: list, players: int, convention, max_steps: int | None):
        self.envs, self.players, self.convention, self.max_steps = envs, players, convention, max_steps
        self.num_actions = num_actions(envs[0])
        self.steps = np.zeros(len(envs), dtype=np.int64)
        self.obs = np.zeros((len(envs) * players, *convention.space().shape), dtype=convention.space().dtype)
        self.prepared = [PreparedReset(w) if (w := _reset_wrapper(env)) is not None else None for env in envs]

    def prepared_resets(self) -> int:
        """How many resets so far swapped in a prepared environment."""
        return sum(p.used for p in self.prepared if p is not None)

    def prepare_reset(self) -> bool:
        """Prepare the next reset of the substrate nearest its episode's end
        that has none prepared; False when there is none to prepare."""
        due = [k for k, p in enumerate(self.prepared) if p is not None and p.due]
        if not due:
            return False
        self.prepared[max(due, key=lambda k: self.steps[k])].prepare()
        return True

    def _put(self, k: int, timestep) -> None:
        self.obs[k * self.players:(k + 1) * self.players] = self.convention.convert_many(timestep.observation)

    def _restart(self, k: int) -> None:
        # meltingpot draws each episode's seed from the one given at build.
        self._put(k, self.envs[k].reset())
        self.steps[k] = 0

    def restart_all(self) -> np.ndarray:
        for k in range(len(self.envs)):
            self._restart(k)
        return self.obs

    def advance(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, list[Ended]]:
        """Step the ``active`` substrates with ``actions`` (substrates x
        players); their players' rewards (zero for the others) and the
        episodes that ended, in substrate order."""
        rewards = np.zeros((len(self.envs), self.players), dtype=np.float32)
        ended = []
        for k in np.flatnonzero(active):
            timestep = self.envs[k].step(actions[k])
            self.steps[k] += 1
            self._put(k, timestep)
            rewards[k] = np.asarray(timestep.reward, dtype=np.float32)
            terminated = timestep.last()
            if terminated or (self.max_steps is not None and self.steps[k] >= self.max_steps):
                rows = slice(k * self.players, (k + 1) * self.players)
                ended.append(Ended(int(k), bool(terminated), self.obs[rows].copy()))
                self._restart(k)
        return rewards, ended

    def close(self) -> None:
        for prepared in self.prepared:
            if prepared is not None:
                prepared.close()
        for env in self.envs:
            env.close()


# a worker that hears nothing from its parent for this long prepares resets
# (a sampling step's round trip, the policy's forward pass included, is a
# few milliseconds; the learner's update takes seconds). None: never (read
# when the workers start; bench/bench_train_throughput.py compares both).
IDLE_SECONDS: float | None = 0.05


def _serve(connection, scenario, seeds: list[int], convention, max_steps: int | None,
           idle_seconds: float | None) -> None:
    """A worker process: build its substrates, then answer the parent's
    requests (``restart_all``, ``advance``, ``prepared_resets``, ``close``)
    until it closes, preparing resets while it is idle.
    Ctrl-C and SIGTERM reach the whole process group; the worker ignores
    them, so that the training process saves its checkpoint with its
    substrates still there, then closes them (and a worker whose parent
    died ends at its pipe's end)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        from capprof.meltingpot_import import import_meltingpot
        from capprof.runners.episode.substrate import build_substrate

        import_meltingpot()
        local = LocalSubstrates([build_substrate(scenario, s) for s in seeds], scenario.n_players, convention,
                                max_steps)
        connection.send(("ready", local.num_actions))
    except Exception:  # noqa: BLE001 - the parent raises it, with the worker's traceback
        connection.send(("error", traceback.format_exc()))
        return
    try:
        while True:
            # idle for IDLE_SECONDS (the parent is updating its policy, not
            # stepping): prepare the next reset, one substrate at a time
            while idle_seconds is not None and not connection.poll(idle_seconds) and local.prepare_reset():
                pass
            request, *args = connection.recv()
            if request == "close":
                break
            try:
                if request == "restart_all":
                    reply = local.restart_all()
                elif request == "prepared_resets":
                    reply = local.prepared_resets()
                else:
                    reply = (*local.advance(*args), local.obs)
                connection.send(("ok", reply))
            except Exception:  # noqa: BLE001
                connection.send(("error", traceback.format_exc()))
    except EOFError:  # the parent went away
        pass
    finally:
        local.close()


class SubstrateProcesses:
    """Substrates stepped in ``processes`` worker processes (contiguous
    groups of substrates, as even as they divide), started with ``spawn``
    so that no state of the training process (Ray, torch threads) is
    inherited."""

    def __init__(self, scenario, seeds: list[int], convention, max_steps: int | None, processes: int):
        self.players = scenario.n_players
        self.obs = np.zeros((len(seeds) * self.players, *convention.space().shape),
                            dtype=convention.space().dtype)
        bounds = np.linspace(0, len(seeds), min(processes, len(seeds)) + 1).round().astype(int)
        self.groups = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        context = multiprocessing.get_context("spawn")
        self._connections, self._processes = [], []
        try:
            for group in self.groups:
                parent, child = context.Pipe()
                args = (child, scenario, seeds[group], convention, max_steps, IDLE_SECONDS)
                process = context.Process(target=_serve, args=args, daemon=True, name="capprof-substrates")
                process.start()
                child.close()
                self._connections.append(parent)
                self._processes.append(process)
            self.num_actions = self._gather(starting=True)[0]  # each worker's "ready"
        except BaseException:
            self.close()
            raise

    def _gather(self, starting: bool = False) -> list:
        replies = []
        for connection, process in zip(self._connections, self._processes):
            try:
                status, reply = connection.recv()
            except EOFError:
                process.join(timeout=5)  # for its exit code
                if starting:
                    # Spawned workers import the script that started training
                    # (multiprocessing's rule): unguarded, it trains again in them.
                    raise CapprofError(
                        f"a substrate worker process (pid {process.pid}) ended before it was ready (exit code "
                        f"{process.exitcode}); if your own script starts the training, put that code under "
                        f"`if __name__ == \"__main__\":` (the workers are spawned and import it), or train with "
                        f"--substrate-processes 0") from None
                raise CapprofError(f"a substrate worker process (pid {process.pid}) ended unexpectedly (exit code "
                                   f"{process.exitcode}); resume with --resume, or train with "
                                   f"--substrate-processes 0") from None
            if status == "error":
                raise RuntimeError(f"a substrate process failed:\n{reply}")
            replies.append(reply)
        return replies

    def restart_all(self) -> np.ndarray:
        for connection in self._connections:
            connection.send(("restart_all",))
        for group, obs in zip(self.groups, self._gather()):
            self.obs[self._rows(group)] = obs
        return self.obs

    def prepared_resets(self) -> int:
        """How many resets so far, over all workers, swapped in an
        environment prepared while the worker was idle."""
        for connection in self._connections:
            connection.send(("prepared_resets",))
        return sum(self._gather())

    def _rows(self, group: slice) -> slice:
        return slice(group.start * self.players, group.stop * self.players)

    def advance(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, list[Ended]]:
        for connection, group in zip(self._connections, self.groups):
            connection.send(("advance", actions[group], active[group]))
        rewards, ended = [], []
        for group, (group_rewards, group_ended, obs) in zip(self.groups, self._gather()):
            rewards.append(group_rewards)
            ended += [Ended(e.k + group.start, e.terminated, e.final) for e in group_ended]
            self.obs[self._rows(group)] = obs
        return np.concatenate(rewards), ended

    def close(self) -> None:
        for connection in self._connections:
            try:
                connection.send(("close",))
            except (BrokenPipeError, OSError):
                pass
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        for connection in self._connections:
            connection.close()
        self._connections, self._processes = [], []
