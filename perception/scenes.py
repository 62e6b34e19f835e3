"""The highway scene dataset: camera frames from highway-env rollouts, labelled from ground truth.

Frames are exactly the agent's camera observation (the whole stack). Episodes are
driven by a seeded mix of policies (random, lane weaving, always faster, always
slower, IDM/MOBIL), at several traffic densities, so that calm and dangerous
scenes both appear. Splits are by episode: no near-duplicate frame crosses splits.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from envs import EnvConfig, RewardConfig, make_env
from envs.io import atomic_write, write_json
from envs.scene import hand_ego_to_idm
from perception.config import DatasetConfig
from perception.labels import NEAR_AHEAD, SIDE_AHEAD, SIDE_BEHIND, class_names, scene_label

SPLITS = ("train", "val", "test")
DRIVERS = ("random", "weave", "faster", "slower", "idm")
MANIFEST = "manifest.json"


def _driver(name: str, rng: np.random.Generator) -> Callable[[], int]:
    """A meta-action chooser (0 LEFT, 1 IDLE, 2 RIGHT, 3 FASTER, 4 SLOWER)."""
    if name == "random":
        return lambda: int(rng.integers(5))
    if name == "weave":
        return lambda: int(rng.choice([0, 2, 3, 1], p=[0.3, 0.3, 0.3, 0.1]))
    if name == "faster":
        return lambda: 3
    if name == "slower":
        return lambda: 4
    return lambda: 1  # idm: the ego drives itself


def episode_plan(cfg: DatasetConfig) -> list[dict[str, Any]]:
    """Seeded per-episode settings: env seed, driver and traffic density."""
    rng = np.random.default_rng(cfg.seed)
    return [
        {
            "episode": i,
            "seed": int(rng.integers(2**31 - 1)),
            "driver": DRIVERS[i % len(DRIVERS)],
            "density": cfg.vehicles_density[(i // len(DRIVERS)) % len(cfg.vehicles_density)],
        }
        for i in range(cfg.episodes)
    ]


def rollout(env_cfg: EnvConfig, plan: dict[str, Any], labels: str = "scene") -> tuple[np.ndarray, np.ndarray]:
    """Frames (N, stack, W, H) uint8 and labels (N,) in label set ``labels`` of one episode, one per decision step."""
    env_cfg = dataclasses.replace(env_cfg, vehicles_density=plan["density"])
    env = make_env(env_cfg, RewardConfig())
    rng = np.random.default_rng(plan["seed"])
    try:
        env.reset(seed=plan["seed"])
        if plan["driver"] == "idm":
            hand_ego_to_idm(env)
        act = _driver(plan["driver"], rng)
        frames, classes, done = [], [], False
        while not done:
            obs, _, terminated, truncated, _ = env.step(act())
            frames.append(obs.copy())
            classes.append(scene_label(env, labels))
            done = terminated or truncated
    finally:
        env.close()
    return np.stack(frames), np.array(classes, dtype=np.int64)


def split_episodes(cfg: DatasetConfig) -> dict[str, list[int]]:
    """Episode ids of each split, drawn with the dataset seed."""
    order = np.random.default_rng(cfg.seed + 1).permutation(cfg.episodes).tolist()
    n_test = max(1, round(cfg.test_fraction * cfg.episodes))
    n_val = max(1, round(cfg.val_fraction * cfg.episodes))
    return {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }


def generate(cfg: DatasetConfig, env_cfg: EnvConfig, progress: Callable[[int], None] | None = None) -> Path:
    """Roll out, label, split and store the dataset under ``cfg.path``; returns that dir.

    Writes ``{train,val,test}.npz`` (frames, labels, episode) and ``manifest.json``.
    """
    out = Path(cfg.path).expanduser()
    plans = episode_plan(cfg)
    workers = cfg.workers or os.cpu_count() or 1
    results: list[tuple[np.ndarray, np.ndarray]] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(rollout, [env_cfg] * len(plans), plans, [cfg.labels] * len(plans)):
            results.append(result)
            if progress:
                progress(1)
    splits = split_episodes(cfg)
    names = class_names(cfg.labels)
    manifest: dict[str, Any] = {
        "generator": dataclasses.asdict(cfg),
        "env": dataclasses.asdict(env_cfg),
        "class_names": names,
        "label_zones_m": {"near_ahead": NEAR_AHEAD, "side_ahead": SIDE_AHEAD, "side_behind": SIDE_BEHIND},
        "frame_shape": list(results[0][0].shape[1:]),
        "splits": {},
    }
    out.mkdir(parents=True, exist_ok=True)
    for split, episodes in splits.items():
        frames = np.concatenate([results[i][0] for i in episodes])
        labels = np.concatenate([results[i][1] for i in episodes])
        episode_ids = np.concatenate([np.full(len(results[i][1]), i, dtype=np.int32) for i in episodes])
        _save_npz(out / f"{split}.npz", frames=frames, labels=labels, episode=episode_ids)
        counts = np.bincount(labels, minlength=len(names))
        manifest["splits"][split] = {
            "episodes": episodes,
            "frames": int(len(labels)),
            "class_counts": {name: int(c) for name, c in zip(names, counts, strict=True)},
        }
    write_json(out / MANIFEST, manifest)  # last: its presence marks a complete dataset
    return out


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy would append .npz to a bare temp name
            np.savez_compressed(f, **arrays)

    atomic_write(path, write)


def matches(path: str | Path, cfg: DatasetConfig, env_cfg: EnvConfig) -> bool:
    """True if a complete dataset generated with exactly these settings lives at ``path``."""
    manifest_path = Path(path).expanduser() / MANIFEST
    if not manifest_path.is_file():
        return False
    manifest = json.loads(manifest_path.read_text())
    wanted = json.loads(json.dumps({"g": dataclasses.asdict(cfg), "e": dataclasses.asdict(env_cfg)}))
    saved = dict(manifest.get("generator", {}))
    saved.setdefault("labels", "scene")  # datasets made before label sets existed
    saved_env = dict(manifest.get("env", {}))
    saved_env.setdefault("intra_frames", [])  # datasets made before intra-decision frames existed
    for settings in (saved, wanted["g"]):
        settings.pop("workers", None)  # how many processes made it does not change the data
    return saved == wanted["g"] and saved_env == wanted["e"]


def load_split(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames, labels, episode ids) of one split."""
    with np.load(Path(path).expanduser() / f"{split}.npz") as data:
        return data["frames"], data["labels"], data["episode"]


def read_manifest(path: str | Path) -> dict[str, Any]:
    return json.loads((Path(path).expanduser() / MANIFEST).read_text())
