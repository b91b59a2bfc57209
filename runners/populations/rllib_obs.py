"""The observation convention shared by capprof's RLlib training helper and
the ``rllib:CHECKPOINT_DIR`` population member.

A module sees one player's ``RGB`` observation (88x88x3 uint8 in every Melting
Pot substrate), optionally downsampled by an integer factor by averaging
``factor x factor`` pixel blocks (factor 8 turns each 8-pixel sprite cell into
one pixel: 11x11x3, as in the contest's down-sampling wrapper), then either
kept as uint8 (0..255) or scaled to float32 in [0, 1].

capprof writes the convention as ``capprof_rllib.json`` beside the checkpoint
(``CONVENTION_FILE``). Without that file it is inferred from the module's
observation space: the factor from its height, uint8 vs scaled float from its
dtype.

``train.json`` (``TRAIN_FILE``) is the record ``capprof train`` keeps in the
same directory: what made the modules (``read_train_file``).

This module imports neither torch nor ray, so the CLI can check a checkpoint
directory quickly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from capprof.errors import CapprofError
from capprof.readers import read_json

CONVENTION_FILE = "capprof_rllib.json"
TRAIN_FILE = "train.json"  # the record capprof train keeps beside the modules
RGB_SIZE = 88  # every Melting Pot substrate renders 11x11 cells of 8 pixels
MODULES_SUBDIR = Path("learner_group") / "learner" / "rl_module"
# capprof train's playable copy of each checkpoint: DIR/snapshots/step_<N>/ plays as rllib:
SNAPSHOTS = "snapshots"


@dataclass(frozen=True)
class ObsConvention:
    observation: str = "RGB"
    downsample: int = 8
    scale: bool = True  # float32 in [0, 1]; False: uint8 0..255

    def shape(self, rgb_size: int = RGB_SIZE) -> tuple[int, int, int]:
        side = rgb_size // self.downsample
        return (side, side, 3)

    def space(self, rgb_size: int = RGB_SIZE):
        import gymnasium as gym

        if self.scale:
            return gym.spaces.Box(0.0, 1.0, self.shape(rgb_size), np.float32)
        return gym.spaces.Box(0, 255, self.shape(rgb_size), np.uint8)

    def convert(self, observation: dict) -> np.ndarray:
        """One player's meltingpot observation dict -> the module's input."""
        return self.convert_many([observation])[0]

    def convert_many(self, observations) -> np.ndarray:
        """Every player's observation dict -> a stacked batch (the vectorised
        sampler converts a substrate's players at once; ``convert`` is this
        for one, so training and play see the same numbers)."""
        rgb = np.stack([np.asarray(o[self.observation]) for o in observations])
        f = self.downsample
        if f > 1:
            n, h, w, c = rgb.shape
            h, w = h - h % f, w - w % f
            # Block sums in float32 are exact (at most f*f*255 < 2**24) and,
            # summed one axis at a time over contiguous memory, ~5x faster
            # than one integer sum over two strided axes.
            rows = rgb[:, :h, :w].reshape(n * (h // f), f, w * c).astype(np.float32).sum(axis=1)
            sums = rows.reshape(n, h // f, w // f, f, c).sum(axis=3)
            rgb = sums.astype(np.float64) / float(f * f)
        if self.scale:
            return (rgb / 255.0).astype(np.float32)
        return np.rint(rgb).astype(np.uint8) if f > 1 else rgb.astype(np.uint8)

    def to_json(self, **extra) -> str:
        return json.dumps({**asdict(self), **extra}, indent=2, sort_keys=True) + "\n"


def read_train_file(out: Path) -> dict:
    """``out/train.json``, the record of the ``capprof train`` run that made
    the directory (command, settings, budget, progress)."""
    return read_json(Path(out) / TRAIN_FILE, "it was not written by capprof train",
                     missing=f"{out} has no {TRAIN_FILE}; it was not made by capprof train")


def read_convention(checkpoint: Path) -> tuple[ObsConvention, dict] | None:
    """The convention capprof wrote beside ``checkpoint`` (and the file's other
    keys), or None when there is no such file."""
    path = Path(checkpoint) / CONVENTION_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        convention = ObsConvention(observation=str(data.get("observation", "RGB")),
                                   downsample=int(data.get("downsample", 8)), scale=bool(data.get("scale", True)))
    except (ValueError, TypeError, AttributeError) as exc:
        raise CapprofError(f"{path} is not a valid capprof RLlib convention file ({exc})") from None
    if convention.downsample < 1 or RGB_SIZE % convention.downsample:
        raise CapprofError(f"{path}: downsample must divide {RGB_SIZE} (got {convention.downsample})")
    return convention, data


def infer_convention(space) -> ObsConvention:
    """The convention of a module trained on observations in ``space``."""
    shape = tuple(getattr(space, "shape", None) or ())
    if len(shape) != 3 or shape[2] != 3 or shape[0] != shape[1] or RGB_SIZE % shape[0]:
        raise CapprofError(
            f"the module's observation space {space} is not an RGB image of side dividing {RGB_SIZE}; "
            f"describe its observation in {CONVENTION_FILE} beside the checkpoint")
    return ObsConvention(downsample=RGB_SIZE // shape[0], scale=np.dtype(space.dtype) != np.uint8)


def module_dirs(checkpoint: Path) -> dict[str, Path]:
    """Module id -> directory of every RLModule saved in an Algorithm checkpoint."""
    root = Path(checkpoint) / MODULES_SUBDIR
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir()}


def resolve_module(checkpoint: str, policy_id: str | None, spec: str) -> Path:
    """Directory of the RLModule ``rllib:CHECKPOINT[:POLICY_ID]`` names; one-line
    CapprofError when the checkpoint is missing or not an RLlib Algorithm
    checkpoint of the new API stack."""
    path = Path(checkpoint).expanduser()
    if path.exists() and not path.is_dir():
        raise CapprofError(f'"{spec}": {path} is a file; give the checkpoint directory (a capprof train '
                           "directory, or the folder RLlib saved)")
    if not path.is_dir():
        raise CapprofError(f'"{spec}": checkpoint directory {path} does not exist')
    # A single RLModule checkpoint (RLModule.save_to_path) is accepted too.
    if (path / "class_and_ctor_args.pkl").exists() and not (path / MODULES_SUBDIR).exists():
        if policy_id:
            raise CapprofError(f'"{spec}": {path} holds a single RLModule; drop ":{policy_id}"')
        return path
    modules = module_dirs(path)
    if not modules and ((path / "policy_state.pkl").exists() or (path / "policies").is_dir()
                        or (path / "algorithm_state.pkl").exists()):
        raise CapprofError(
            f'"{spec}": {path} is an old-stack RLlib checkpoint (Policy / policies/ layout, as ray 2.6 saved '
            "them), which this ray cannot load; build the contest's environment with `make legacy-env` and "
            "play it there through a wrapper Policy (docs/runners.md, \"Old RLlib checkpoints\")")
    if not modules:
        raise CapprofError(
            f'"{spec}": {path} is not an RLlib (new API stack) Algorithm checkpoint: no '
            f"{MODULES_SUBDIR}/ inside; save one with Algorithm.save_to_path or "
            "`capprof train`")
    if policy_id:
        if policy_id not in modules:
            raise CapprofError(f'"{spec}": no module "{policy_id}" in {path}; it holds {", ".join(modules)}')
        return modules[policy_id]
    if len(modules) > 1:
        raise CapprofError(f'"{spec}": {path} holds modules {", ".join(modules)}; pick one with '
                           f"rllib:{checkpoint}:MODULE_ID")
    return next(iter(modules.values()))
