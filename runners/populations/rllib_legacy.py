"""``rllib-legacy:CHECKPOINT[:POLICY_ID][#greedy|#sample]@PYTHON``: an RLlib 2.x
old-API-stack checkpoint, played as the 2023 contest's evaluation played it.

This file runs in the contest's interpreter (``make legacy-env``: Python
3.10, ray 2.6.1), loaded by file path by capprof's bridge
(``capprof.runners.populations.bridge``); it imports the standard library and NumPy at
module level and ray, torch and (when present) OpenCV when a checkpoint is
loaded. capprof's own interpreter never imports it.

CHECKPOINT is any of

* a Policy checkpoint (``policy_state.pkl`` or ``policy_state.msgpck`` and
  ``rllib_checkpoint.json``; ``Policy.export_checkpoint``): every focal slot
  plays it;
* an Algorithm checkpoint (``Algorithm.save``, as the contest's baseline
  trainer saved them: ``checkpoint_NNNNNN/policies/agent_i/``) or its
  ``policies/`` folder: each focal slot plays the policy of its own id
  (``agent_<player index>``), or ``:POLICY_ID`` names one policy for all;
* a Tune trial folder holding ``checkpoint_NNNNNN/`` folders: the highest
  numbered one.

Each step, as the contest baseline's ``EvalPolicy`` did: the observation
without ``WORLD.RGB``, ``INTERACTION_INVENTORIES`` and
``NUM_OTHERS_WHO_CLEANED_THIS_STEP`` (``DROPPED_KEYS``), converted
(``Conversion``), goes to ``compute_single_action(obs, state,
prev_action=<the slot's previous action, 0 at first>, prev_reward=<the
timestep's reward>, explore=...)``; the returned recurrent state is the next
step's. ``explore`` is the checkpoint's own setting (``config["explore"]``,
what ``compute_single_action`` does by default; PPO samples) unless
``#greedy`` or ``#sample`` says otherwise.

The observation conversion is declared, never coded by the user. Each setting
is taken from the first of: ``capprof_legacy.json`` (``SETTINGS_FILE``) in the
checkpoint folder or one of its parents up to the trial folder; the trial's
``params.json`` (``env_config.scaled``: the downsampling factor, as the
contest's baseline trainer recorded it); the policy's own observation space
(its keys, the RGB view's side, flat or not, its bounds); the contest
baseline's defaults (factor 8, area interpolation, uint8, the dict of the
remaining keys). Where two sources disagree about a shape, loading fails with
one line saying what the policy expects and what the conversion gives.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re

import numpy as np

PREFIX = "rllib-legacy:"
SETTINGS_FILE = "capprof_legacy.json"
PARAMS_FILE = "params.json"
DROPPED_KEYS = ("WORLD.RGB", "INTERACTION_INVENTORIES", "NUM_OTHERS_WHO_CLEANED_THIS_STEP")
RGB_KEY = "RGB"
RGB_SIZE = 88  # every Melting Pot substrate renders 11x11 cells of 8 pixels per player
SCALES = {"none": None, "0..1": (0.0, 1.0), "-1..1": (-1.0, 1.0)}  # uint8 kept, or mapped linearly
INTERPOLATIONS = ("area", "nearest", "linear")
SETTINGS_KEYS = ("downsample", "interpolation", "scale", "keys", "flatten", "explore", "batch")
PLAY_MODES = {"greedy": False, "sample": True}
POLICY_STATE_FILES = ("policy_state.pkl", "policy_state.msgpck")
_CHECKPOINT_DIR = re.compile(r"checkpoint_(\d+)")
_PARENT_LEVELS = 3  # policies/agent_i -> policies -> checkpoint_N -> trial folder


class CheckpointError(Exception):
    """A checkpoint or declared setting that cannot be played; one line naming the fix."""


# ------------------------------------------------------------ the spec


def split_spec(spec: str) -> tuple:
    """``rllib-legacy:CHECKPOINT[:POLICY_ID][#greedy|#sample]`` ->
    (CHECKPOINT, POLICY_ID or None, explore: True / False / None (the
    checkpoint's own)). A CHECKPOINT that exists as written wins over
    splitting at its last colon."""
    body = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    explore = None
    head, hash_, mode = body.rpartition("#")
    if hash_:
        if mode not in PLAY_MODES:
            raise CheckpointError('"%s": unknown play mode "#%s"; write #greedy (the most likely action) or '
                                  "#sample, or leave it out to play as the checkpoint's config says" % (spec, mode))
        body, explore = head, PLAY_MODES[mode]
    if not body:
        raise CheckpointError('"%s": name the checkpoint, as rllib-legacy:CHECKPOINT[:POLICY_ID]@PYTHON' % spec)
    if os.path.exists(os.path.expanduser(body)) or ":" not in body:
        return body, None, explore
    path, _, policy_id = body.rpartition(":")
    return path, policy_id or None, explore


# ------------------------------------------------------------ finding the policies


def _is_policy_dir(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, name)) for name in POLICY_STATE_FILES)


def _listing(path: str, limit: int = 6) -> str:
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return "nothing readable"
    if not names:
        return "an empty folder"
    shown = ", ".join(n + ("/" if os.path.isdir(os.path.join(path, n)) else "") for n in names[:limit])
    return shown + (", ... (%d entries)" % len(names) if len(names) > limit else "")


class Located:
    """What a CHECKPOINT path holds: ``policies`` (policy id -> folder; the
    id is None for a lone Policy checkpoint), ``kind`` (a phrase) and
    ``folder`` (the checkpoint actually read, e.g. a trial's latest)."""

    def __init__(self, kind: str, folder: str, policies: dict):
        self.kind, self.folder, self.policies = kind, folder, policies


def locate(checkpoint: str) -> Located:
    """The policies ``checkpoint`` holds, or one CheckpointError line naming what was found there."""
    path = os.path.abspath(os.path.expanduser(checkpoint))
    if not os.path.exists(path):
        raise CheckpointError("checkpoint %s does not exist; give the folder RLlib saved (a Policy checkpoint, "
                              "or checkpoint_NNNNNN/ holding policies/agent_i/)" % checkpoint)
    if not os.path.isdir(path):
        raise CheckpointError("checkpoint %s is a file; give the folder that holds it (%s)"
                              % (checkpoint, os.path.dirname(path)))
    if _is_policy_dir(path):
        return Located("a Policy checkpoint", path, {None: path})
    policies_dir = os.path.join(path, "policies")
    kind = "an Algorithm checkpoint"
    numbered = sorted((int(m.group(1)), n) for n in os.listdir(path)
                      for m in [_CHECKPOINT_DIR.fullmatch(n)] if m and os.path.isdir(os.path.join(path, n)))
    if numbered and not os.path.isdir(policies_dir):
        inner = locate(os.path.join(path, numbered[-1][1]))
        return Located("a Tune trial folder (its latest checkpoint, %s)" % numbered[-1][1], inner.folder,
                       inner.policies)
    if not os.path.isdir(policies_dir) and any(_is_policy_dir(os.path.join(path, n)) for n in os.listdir(path)):
        policies_dir, kind = path, "a policies/ folder"
    if os.path.isdir(policies_dir):
        found = {n: os.path.join(policies_dir, n) for n in sorted(os.listdir(policies_dir))
                 if _is_policy_dir(os.path.join(policies_dir, n))}
        if not found:
            raise CheckpointError("checkpoint %s has a policies/ folder with no policy in it (found %s); each "
                                  "policies/<id>/ holds policy_state.pkl" % (checkpoint, _listing(policies_dir)))
        return Located(kind, path, found)
    if (os.path.isdir(os.path.join(path, "learner_group"))
            or os.path.isfile(os.path.join(path, "class_and_ctor_args.pkl"))):
        raise CheckpointError("checkpoint %s is a new-API-stack RLlib checkpoint (RLModule / learner_group/); "
                              "play it in capprof's own interpreter with rllib:%s" % (checkpoint, checkpoint))
    raise CheckpointError("%s is not an RLlib old-API-stack checkpoint: it holds %s; expected policy_state.pkl "
                          "(a Policy checkpoint), policies/agent_i/ (an Algorithm checkpoint) or "
                          "checkpoint_NNNNNN/ folders (a Tune trial)" % (checkpoint, _listing(path)))


def select(located: Located, policy_id, checkpoint: str) -> dict:
    """The policies a spec plays: all of ``located``'s, or the one ``policy_id`` names."""
    if policy_id is None:
        return located.policies
    if policy_id in located.policies:
        return {policy_id: located.policies[policy_id]}
    if list(located.policies) == [None]:
        raise CheckpointError("%s is a single Policy checkpoint; drop \":%s\" (it plays every focal slot)"
                              % (checkpoint, policy_id))
    raise CheckpointError('no policy "%s" in %s; it holds %s' % (policy_id, checkpoint, ", ".join(located.policies)))


def _ancestors(folder: str) -> list:
    out, here = [], folder
    for _ in range(_PARENT_LEVELS + 1):
        out.append(here)
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    return out


def _read_json(path: str, what: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise CheckpointError("%s: cannot read it as JSON (%s); fix or remove the %s" % (path, exc, what)) from None
    if not isinstance(data, dict):
        raise CheckpointError("%s holds a %s, not a JSON object; fix or remove the %s"
                              % (path, type(data).__name__, what))
    return data


def declared_settings(folder: str) -> tuple:
    """(settings, path) from the nearest ``capprof_legacy.json`` at or above
    ``folder`` (within the trial), or ({}, None). Unknown keys and bad values fail."""
    for here in _ancestors(folder):
        path = os.path.join(here, SETTINGS_FILE)
        if os.path.isfile(path):
            data = _read_json(path, "settings file")
            unknown = sorted(set(data) - set(SETTINGS_KEYS))
            if unknown:
                raise CheckpointError("%s: unknown setting %s; the settings are %s"
                                      % (path, ", ".join(map(repr, unknown)), ", ".join(SETTINGS_KEYS)))
            _check_settings(data, path)
            return data, path
    return {}, None


def _check_settings(data: dict, where: str) -> None:
    if "downsample" in data and (not isinstance(data["downsample"], int) or isinstance(data["downsample"], bool)
                                 or data["downsample"] < 1):
        raise CheckpointError("%s: downsample is %r; give a whole factor >= 1 (8: 88x88 -> 11x11)"
                              % (where, data["downsample"]))
    if "interpolation" in data and data["interpolation"] not in INTERPOLATIONS:
        raise CheckpointError("%s: interpolation is %r; give one of %s"
                              % (where, data["interpolation"], ", ".join(INTERPOLATIONS)))
    if "scale" in data and data["scale"] not in SCALES:
        raise CheckpointError("%s: scale is %r; give one of %s" % (where, data["scale"], ", ".join(map(repr, SCALES))))
    if "keys" in data and (not isinstance(data["keys"], list) or not all(isinstance(k, str) for k in data["keys"])):
        raise CheckpointError("%s: keys is %r; give a list of observation names, e.g. [\"RGB\", \"READY_TO_SHOOT\"]"
                              % (where, data["keys"]))
    for flag in ("flatten", "explore", "batch"):
        if flag in data and not isinstance(data[flag], bool):
            raise CheckpointError("%s: %s is %r; give true or false" % (where, flag, data[flag]))


def trial_downsample(folder: str) -> tuple:
    """(factor, path) from the nearest trial ``params.json`` whose
    ``env_config`` has ``scaled``, or (None, None)."""
    for here in _ancestors(folder):
        path = os.path.join(here, PARAMS_FILE)
        if os.path.isfile(path):
            scaled = (_read_json(path, "trial parameters").get("env_config") or {}).get("scaled")
            if scaled is None:
                continue
            if isinstance(scaled, bool) or not isinstance(scaled, (int, float)) or scaled < 1 or scaled != int(scaled):
                raise CheckpointError("%s: env_config.scaled is %r; the contest's trainer wrote a whole downsampling "
                                      "factor there (8); declare the factor in %s" % (path, scaled, SETTINGS_FILE))
            return int(scaled), path
    return None, None


# ------------------------------------------------------------ the conversion


class Conversion:
    """How one player's Melting Pot observation becomes the policy's input:
    ``keys`` kept (None: one image, not a dict), the RGB view downsampled by
    ``downsample`` with ``interpolation``, mapped to ``scale`` and
    ``flatten``ed or not. ``sources`` says where each setting came from."""

    def __init__(self, keys, downsample: int, interpolation: str, scale: str, flatten: bool, sources: dict):
        self.keys, self.downsample, self.interpolation = keys, downsample, interpolation
        self.scale, self.flatten, self.sources = scale, flatten, sources
        try:
            import cv2

            self._cv2 = cv2
        except ImportError:
            self._cv2 = None
        if interpolation == "linear" and self._cv2 is None:
            raise CheckpointError("interpolation \"linear\" needs OpenCV (cv2) in this interpreter; install "
                                  "opencv-python-headless there or declare \"area\"")

    def describe(self) -> str:
        what = "a dict of %s" % ", ".join(self.keys) if self.keys is not None else "the RGB view alone"
        how = "RGB downsampled %dx (%s), %s%s" % (
            self.downsample, self.interpolation, "uint8" if self.scale == "none" else "scaled to " + self.scale,
            ", flattened" if self.flatten else "")
        by_source: dict = {}
        for setting, source in sorted(self.sources.items()):
            by_source.setdefault(source, []).append(setting)
        where = "; ".join("%s: %s" % (source, ", ".join(names)) for source, names in by_source.items())
        return "%s; %s [%s]" % (what, how, where)

    def image(self, rgb):
        rgb = np.asarray(rgb)
        f = self.downsample
        if f > 1:
            h, w = rgb.shape[0] // f, rgb.shape[1] // f
            if self._cv2 is not None:  # what the contest's downsampling wrapper called
                flag = {"area": self._cv2.INTER_AREA, "nearest": self._cv2.INTER_NEAREST,
                        "linear": self._cv2.INTER_LINEAR}[self.interpolation]
                rgb = self._cv2.resize(rgb, (w, h), interpolation=flag)
            elif self.interpolation == "nearest":
                rgb = rgb[:h * f:f, :w * f:f]
            else:  # area: the block mean, rounded as OpenCV rounds uint8
                blocks = rgb[:h * f, :w * f].reshape(h, f, w, f, -1).astype(np.float64).mean(axis=(1, 3))
                rgb = np.rint(blocks).astype(np.uint8)
        bounds = SCALES[self.scale]
        if bounds is not None:
            low, high = bounds
            rgb = (rgb.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)).astype(np.float32)
        return rgb.reshape(-1) if self.flatten else rgb

    def convert(self, observation: dict):
        if self.keys is None:
            return self.image(observation[RGB_KEY])
        out = {}
        for key in self.keys:
            if key not in observation:
                raise CheckpointError("the policy reads observation %s, which this substrate's players do not "
                                      "observe (they observe %s); declare \"keys\" in %s"
                                      % (key, ", ".join(sorted(observation)), SETTINGS_FILE))
            value = observation[key]
            out[key] = self.image(value) if key == RGB_KEY else value
        return out


def _space_text(space) -> str:
    return "%s%s %s" % (type(space).__name__, tuple(space.shape), getattr(space, "dtype", ""))


def _scale_of(box) -> str:
    """The scale a Box of images was trained in: uint8 / 0..255 bounds ->
    none, [0, 1] -> 0..1, [-1, 1] -> -1..1 (unbounded: none)."""
    if np.dtype(box.dtype) == np.uint8:
        return "none"
    low, high = float(np.min(box.low)), float(np.max(box.high))
    for name, bounds in SCALES.items():
        if bounds is not None and (low, high) == bounds:
            return name
    return "none"


def conversion_for(space, folder: str, where: str) -> Conversion:
    """The conversion for a policy trained on ``space`` (its original,
    unflattened space), settings taken as the module docstring says."""
    declared, declared_path = declared_settings(folder)
    scaled, params_path = trial_downsample(folder)
    sources = {}

    def pick(name, from_space, default):
        if name in declared:
            sources[name] = declared_path
            return declared[name]
        if name == "downsample" and scaled is not None:
            sources[name] = params_path
            return scaled
        if from_space is not None:
            sources[name] = "the policy's space"
            return from_space
        sources[name] = "the contest baseline's default"
        return default

    keys, image, flatten, expected = _read_space(space, declared, declared_path, where, pick)
    downsample = pick("downsample", _downsample_from_shape(expected), 8)
    interpolation = pick("interpolation", None, "area")
    scale = pick("scale", _scale_of(image) if image is not None else None, "none")
    conversion = Conversion(keys, int(downsample), interpolation, scale, bool(flatten), sources)
    _check_gives(conversion, expected, where)
    return conversion


def _read_space(space, declared: dict, declared_path: str, where: str, pick) -> tuple:
    """(keys, RGB space, flatten, the RGB shape the policy expects) from the
    policy's observation ``space``: a dict holding RGB, or RGB as one Box."""
    import gymnasium as gym

    if isinstance(space, gym.spaces.Dict):
        keys = pick("keys", list(space.spaces), None)
        if sorted(keys) != sorted(space.spaces):
            raise CheckpointError("%s: the policy's observation space has keys %s, but %s declares keys %s; RLlib "
                                  "flattens the dict in key order, so give exactly its keys (or none)"
                                  % (where, ", ".join(space.spaces), declared_path, ", ".join(keys)))
        image = space.spaces.get(RGB_KEY)
        if image is None and RGB_KEY in keys:
            raise CheckpointError("%s: the policy's observation space %s has no %s; declare its \"keys\" in %s"
                                  % (where, space, RGB_KEY, SETTINGS_FILE))
        return keys, image, pick("flatten", False, False), tuple(image.shape) if image is not None else None
    if isinstance(space, gym.spaces.Box) and len(space.shape) in (1, 3):
        keys = declared.get("keys")
        if keys is not None and keys != [RGB_KEY]:
            raise CheckpointError("%s: the policy takes one array (%s), not a dict; declare keys [\"RGB\"] or "
                                  "none in %s" % (where, _space_text(space), SETTINGS_FILE))
        return None, space, pick("flatten", len(space.shape) == 1, False), tuple(space.shape)
    raise CheckpointError("%s: the policy's observation space %s is not supported (a dict with RGB, or the "
                          "RGB view as a Box, flat or not)" % (where, space))


def _downsample_from_shape(expected):
    """The downsampling factor an RGB shape implies (88 / its side, flat or
    not), None when there is no shape or it is not a square fraction of 88."""
    if expected is None:
        return None
    pixels = int(np.prod(expected)) // 3
    side = int(round(math.sqrt(pixels))) if len(expected) == 1 else expected[0]
    if side and RGB_SIZE % side == 0 and (len(expected) != 1 or side * side * 3 == expected[0]):
        return RGB_SIZE // side
    return None


def _check_gives(conversion: Conversion, expected, where: str) -> None:
    """Refuse a conversion whose RGB shape is not the one the policy expects."""
    if expected is None:
        return
    side = RGB_SIZE // conversion.downsample
    gives = (side * side * 3,) if conversion.flatten else (side, side, 3)
    if gives != expected:
        raise CheckpointError("%s: the policy expects RGB as %s, but the conversion (%s) gives %s; declare "
                              "\"downsample\" / \"flatten\" in %s beside the checkpoint"
                              % (where, expected, conversion.describe(), gives, SETTINGS_FILE))


# ------------------------------------------------------------ loading and playing


# The two caches below live in the bridge's child process, which serves one
# run and exits, so they hold per-run state by construction; the parent never
# imports this module.
@functools.lru_cache(maxsize=None)
def load_policy(folder: str):
    """The ray Policy saved in ``folder`` (once per process), torch on one
    thread (the contest gave one vCPU per agent)."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    try:
        from ray.rllib.policy.policy import Policy
    except ImportError as exc:
        raise CheckpointError("this interpreter cannot import ray's RLlib (%s); play old checkpoints in the "
                              "contest's environment: make legacy-env, then @.venv-legacy/bin/python" % exc) from None
    try:
        return Policy.from_checkpoint(folder)
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        first = lines[0] if lines else ""
        raise CheckpointError("%s: ray could not load this policy (%s: %s); was it saved by another ray version "
                              "than this interpreter's?" % (folder, type(exc).__name__, first)) from None


def _ray_version(folder: str):
    for here in (folder, os.path.dirname(os.path.dirname(folder))):
        path = os.path.join(here, "rllib_checkpoint.json")
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    return json.load(f).get("ray_version")
            except (OSError, ValueError):
                return None
    return None


class Loaded:
    """One policy of a checkpoint, ready to play: the ray Policy, its
    conversion, its number of actions and whether it samples."""

    def __init__(self, policy_id, folder: str, checkpoint: str, explore):
        import gymnasium as gym

        self.policy_id, self.folder = policy_id, folder
        self.policy = load_policy(folder)
        where = checkpoint if policy_id is None else "%s policy %s" % (checkpoint, policy_id)
        space = getattr(self.policy.observation_space, "original_space", None) or self.policy.observation_space
        self.conversion = conversion_for(space, folder, where)
        action_space = self.policy.action_space
        if not isinstance(action_space, gym.spaces.Discrete):
            raise CheckpointError("%s: the policy's action space %s is not Discrete; Melting Pot's actions are"
                                  % (where, action_space))
        self.num_actions = int(action_space.n)
        declared, _ = declared_settings(folder)
        own = bool(self.policy.config.get("explore", True))
        self.explore = explore if explore is not None else declared.get("explore", own)
        self.recurrent = bool(self.policy.get_initial_state())
        self.ray_version = _ray_version(folder)
        self.batch = bool(declared.get("batch", False))
        self.preprocessor = None
        if self.batch:  # compute_actions takes observations flattened as the policy's own connectors flatten them
            from ray.rllib.models.catalog import ModelCatalog

            self.preprocessor = ModelCatalog.get_preprocessor_for_space(space)

    def describe(self) -> dict:
        return {"actions": self.num_actions, "conversion": self.conversion.describe(),
                "explore": self.explore, "recurrent": self.recurrent, "ray_version": self.ray_version,
                "batch": self.batch}


class LegacyPolicy:
    """meltingpot's Policy protocol over a ray Policy, stepping as the contest
    baseline's EvalPolicy did. The state is (recurrent state, previous action)."""

    def __init__(self, loaded: Loaded):
        self.loaded = loaded
        self.policy, self.conversion, self.explore = loaded.policy, loaded.conversion, loaded.explore

    def initial_state(self):
        return (self.policy.get_initial_state(), 0)

    def step(self, timestep, prev_state):
        state, prev_action = prev_state
        observation = {k: v for k, v in timestep.observation.items() if k not in DROPPED_KEYS}
        reward = 0.0 if timestep.reward is None else float(timestep.reward)
        action, state, _ = self.policy.compute_single_action(
            self.conversion.convert(observation), state, prev_action=prev_action, prev_reward=reward,
            explore=self.explore)
        action = int(action)
        return action, (state, action)

    def batch_key(self):
        """Slots playing the same policy and play mode step in one
        ``compute_actions`` call when ``"batch": true`` is declared (the
        bridge groups them); None: one ``compute_single_action`` each, as the
        contest's evaluation did."""
        return (id(self.loaded), self.explore) if self.loaded.batch else None

    @staticmethod
    def step_batch(members: list, timesteps: list, states: list) -> list:
        """(action, next state) for each of ``members`` (sharing a batch key)
        from one forward pass: the same inputs as ``step``'s, stacked."""
        loaded = members[0].loaded
        convert, flatten = loaded.conversion.convert, loaded.preprocessor.transform
        obs = np.stack([flatten(convert({k: v for k, v in ts.observation.items() if k not in DROPPED_KEYS}))
                        for ts in timesteps])
        recurrent = [np.stack([state[0][i] for state in states]) for i in range(len(states[0][0]))]
        rewards = np.array([0.0 if ts.reward is None else float(ts.reward) for ts in timesteps])
        actions, recurrent_out, _ = loaded.policy.compute_actions(
            obs, state_batches=recurrent or None, prev_action_batch=np.array([state[1] for state in states]),
            prev_reward_batch=rewards, explore=members[0].explore)
        return [(int(a), ([s[i] for s in recurrent_out], int(a))) for i, a in enumerate(actions)]

    def close(self):
        pass


@functools.lru_cache(maxsize=None)
def _loaded(folder: str, policy_id, checkpoint: str, explore) -> Loaded:
    return Loaded(policy_id, folder, checkpoint, explore)


def resolve(spec: str) -> tuple:
    """(CHECKPOINT as written, Located, {policy id: Loaded}) for ``spec``:
    every policy it may play, loaded and checked."""
    checkpoint, policy_id, explore = split_spec(spec)
    located = locate(checkpoint)
    chosen = select(located, policy_id, checkpoint)
    return checkpoint, located, {pid: _loaded(folder, pid, checkpoint, explore) for pid, folder in chosen.items()}


def describe(spec: str) -> dict:
    """What the parent checks before any episode: the checkpoint's kind and
    folder, whether one policy plays every slot, and each policy's actions,
    conversion and play mode."""
    _, located, loaded = resolve(spec)
    return {"kind": located.kind, "folder": located.folder, "one_for_all": len(loaded) == 1,
            "policies": {str(pid) if pid is not None else "": l.describe() for pid, l in loaded.items()}}


def build(spec: str, policy_id: str, seed: int) -> LegacyPolicy:
    """The policy a focal slot with id ``policy_id`` plays: the checkpoint's
    only (or named) policy, else its policy of that id. torch's generator is
    seeded with ``seed`` (sampling draws from it)."""
    checkpoint, located, loaded = resolve(spec)
    if len(loaded) == 1:
        chosen = next(iter(loaded.values()))
    elif policy_id in loaded:
        chosen = loaded[policy_id]
    else:
        raise CheckpointError("%s holds no policy %s for this focal slot (it holds %s); name one for every slot "
                              "with rllib-legacy:%s:%s@PYTHON" % (checkpoint, policy_id, ", ".join(map(str, loaded)),
                                                                  checkpoint, next(iter(loaded))))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass
    return LegacyPolicy(chosen)
