"""Perception: labels, scene dataset, IDX files, classifier training and reuse in PPO."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from envs import EnvConfig, RewardConfig, make_env
from perception.config import DatasetConfig
from perception.extractor import FramesExtractor, extractor_kwargs
from perception.labels import CLASS_NAMES, class_names, flip_label, scene_label
from perception.mnist import FILES, IDXError, load_mnist, read_idx, write_idx
from perception.model import CheckpointError, PerceptionNet, check_input_shape, load_checkpoint, save_checkpoint
from perception.scenes import generate, load_split, matches, read_manifest, split_episodes
from tests.conftest import assert_not_blank, run_script


# ---------------------------------------------------------------- labels
def place(env, lane: int, x: float, speed: float = 25.0):
    """A traffic vehicle at longitudinal position x [m] of lane ``lane``, driving at ``speed`` [m/s]."""
    from highway_env.vehicle.kinematics import Vehicle

    road = env.unwrapped.road
    lane_index = ("0", "1", lane)
    v = Vehicle(road, road.network.get_lane(lane_index).position(x, 0), heading=0.0, speed=speed)
    v.lane_index = lane_index
    road.vehicles.append(v)
    return v


def scene(ego_lane: int, others: list[tuple], label_set: str = "scene", ego_speed: float = 25.0) -> int:
    """Label of a hand-built scene: ego at x=100 m in ``ego_lane`` at ``ego_speed``, traffic at (lane, x[, speed])."""
    env = make_env(EnvConfig(observation="kinematics"), RewardConfig())
    env.reset(seed=0)
    base = env.unwrapped
    ego = base.vehicle
    base.road.vehicles = [ego]
    lane = base.road.network.get_lane(("0", "1", ego_lane))
    ego.position = lane.position(100.0, 0)
    ego.heading = 0.0
    ego.speed = ego_speed
    ego.lane_index = ego.target_lane_index = ("0", "1", ego_lane)
    for other in others:
        place(env, *other)
    return scene_label(env, label_set)


@pytest.mark.parametrize(
    ("ego_lane", "others", "expected"),
    [
        (1, [], "clear"),
        (1, [(1, 120.0)], "A"),  # 15 m gap ahead
        (1, [(1, 140.0)], "clear"),  # 35 m gap: beyond the near zone
        (1, [(0, 92.0)], "L"),  # 3 m behind on the left
        (1, [(0, 80.0)], "clear"),  # 15 m behind on the left: free
        (1, [(2, 115.0), (1, 125.0)], "AR"),
        (0, [], "L"),  # no lane on the left
        (2, [], "R"),  # no lane on the right
        (0, [(1, 100.0), (0, 110.0)], "LAR"),
    ],
)
def test_labels_agree_with_hand_checked_scenes(ego_lane: int, others: list, expected: str) -> None:
    assert CLASS_NAMES[scene(ego_lane, others)] == expected


@pytest.mark.parametrize(
    ("others", "ego_speed", "expected"),
    [
        ([(1, 125.0, 20.0)], 30.0, "AB"),  # 20 m gap, closing at 10 m/s
        ([(1, 135.0, 15.0)], 30.0, "B"),  # 30 m gap: beyond the near zone, but closing at 15 m/s
        ([(1, 145.0, 20.0)], 30.0, "clear"),  # 40 m gap leaves room to slow down from 30 to 20 m/s
        ([(1, 125.0, 30.0)], 25.0, "A"),  # near, but pulling away
        ([(1, 118.0, 25.0)], 25.0, "A"),  # 13 m gap at equal speeds: beyond RSS's distance
        ([(0, 110.0, 10.0)], 30.0, "L"),  # a slow car beside, in another lane: no braking
        ([], 30.0, "clear"),
    ],
)
def test_brake_labels_agree_with_hand_checked_scenes(others: list, ego_speed: float, expected: str) -> None:
    assert class_names("scene_brake")[scene(1, others, "scene_brake", ego_speed)] == expected
    assert CLASS_NAMES[scene(1, others, "scene", ego_speed)] == (expected.replace("B", "") or "clear")


def test_flip_label_swaps_left_and_right() -> None:
    names = {n: i for i, n in enumerate(class_names("scene_brake"))}
    assert flip_label(names["L"]) == names["R"]
    assert flip_label(names["LA"]) == names["AR"]
    assert flip_label(names["LAR"]) == names["LAR"]
    assert flip_label(names["A"]) == names["A"]
    assert flip_label(names["LB"]) == names["RB"]
    assert flip_label(names["ARB"]) == names["LAB"]
    assert [flip_label(flip_label(c)) for c in range(16)] == list(range(16))


def test_label_sets_are_named_and_checked() -> None:
    assert class_names("scene") == CLASS_NAMES == ["clear", "L", "A", "LA", "R", "LR", "AR", "LAR"]
    assert class_names("scene_brake")[:8] == CLASS_NAMES and class_names("scene_brake")[8] == "B"
    with pytest.raises(ValueError, match="labels: unknown label set 'brake'"):
        class_names("brake")
    with pytest.raises(ValueError, match="labels: unknown label set 'brake' \\(known: scene, scene_brake\\)"):
        DatasetConfig(labels="brake")


# ---------------------------------------------------------------- scene dataset
def tiny_dataset(path: Path, seed: int = 0, labels: str = "scene") -> DatasetConfig:
    cfg = DatasetConfig(
        path=str(path), episodes=5, seed=seed, val_fraction=0.2, test_fraction=0.2, workers=1, labels=labels
    )
    generate(cfg, EnvConfig())
    return cfg


def test_scene_dataset_is_deterministic_and_split_by_episode(tmp_path: Path) -> None:
    tiny_dataset(tmp_path / "a")
    tiny_dataset(tmp_path / "b")
    episodes = {}
    for split in ("train", "val", "test"):
        fa, la, ea = load_split(tmp_path / "a", split)
        fb, lb, eb = load_split(tmp_path / "b", split)
        assert np.array_equal(fa, fb) and np.array_equal(la, lb) and np.array_equal(ea, eb)
        assert fa.shape[1:] == (4, 128, 64) and fa.dtype == np.uint8
        assert_not_blank(fa[len(fa) // 2])
        episodes[split] = set(ea.tolist())
    assert not episodes["train"] & episodes["val"]
    assert not episodes["train"] & episodes["test"]
    assert not episodes["val"] & episodes["test"]
    manifest = read_manifest(tmp_path / "a")
    assert manifest["generator"]["seed"] == 0 and manifest["class_names"] == CLASS_NAMES
    assert sum(manifest["splits"]["train"]["class_counts"].values()) == manifest["splits"]["train"]["frames"]


def test_brake_label_set_dataset_and_old_manifests(tmp_path: Path) -> None:
    cfg = tiny_dataset(tmp_path / "brake", labels="scene_brake")
    manifest = read_manifest(tmp_path / "brake")
    assert manifest["class_names"] == class_names("scene_brake")
    labels = np.concatenate([load_split(tmp_path / "brake", s)[1] for s in ("train", "val", "test")])
    assert labels.max() < 16 and (labels >= 8).any()  # 5 episodes include the always-faster driver
    assert matches(tmp_path / "brake", cfg, EnvConfig())
    assert not matches(tmp_path / "brake", dataclasses.replace(cfg, labels="scene"), EnvConfig())
    # A dataset made before label sets existed has no "labels" key: it is a "scene" dataset.
    del manifest["generator"]["labels"]
    (tmp_path / "brake" / "manifest.json").write_text(json.dumps(manifest))
    assert matches(tmp_path / "brake", dataclasses.replace(cfg, labels="scene"), EnvConfig())
    # Nor an "intra_frames" key in its env: one frame per decision.
    del manifest["env"]["intra_frames"]
    (tmp_path / "brake" / "manifest.json").write_text(json.dumps(manifest))
    assert matches(tmp_path / "brake", dataclasses.replace(cfg, labels="scene"), EnvConfig())
    assert not matches(tmp_path / "brake", dataclasses.replace(cfg, labels="scene"), EnvConfig(intra_frames=[0.4]))


def test_splits_differ_by_seed() -> None:
    a = split_episodes(DatasetConfig(episodes=20, seed=0))
    b = split_episodes(DatasetConfig(episodes=20, seed=1))
    assert a != b
    assert sorted(a["train"] + a["val"] + a["test"]) == list(range(20))


# ---------------------------------------------------------------- IDX files
def write_mnist(directory: Path, n_train: int = 200, n_test: int = 100, gz: bool = True) -> Path:
    """Tiny separable 'digits': class k is a bright bar at rows 2k..2k+3."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k + 3 : 2 * k + 7, 4:24] = 230
        write_idx(directory / f"{FILES[f'{split}_images']}{suffix}", images)
        write_idx(directory / f"{FILES[f'{split}_labels']}{suffix}", labels)
    return directory


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    data = load_mnist(write_mnist(tmp_path, 30, 10, gz=gz))
    x, y = data["train"]
    assert x.shape == (30, 1, 28, 28) and x.dtype == np.uint8 and y.shape == (30,)
    assert data["test"][0].shape == (10, 1, 28, 28)


def test_idx_missing_file(tmp_path: Path) -> None:
    write_mnist(tmp_path, 10, 10)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(IDXError, match="t10k-labels-idx1-ubyte: file not found"):
        load_mnist(tmp_path)


def test_idx_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes((0x0803).to_bytes(4, "big") + (1).to_bytes(4, "big"))
    with pytest.raises(IDXError, match="wrong magic number 0x00000803 \\(expected 0x00000801\\)"):
        read_idx(path, 0x0801)


def test_idx_truncated(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x", np.zeros((3, 28, 28)))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(IDXError, match="header says 2352"):
        read_idx(path, 0x0803)


def test_idx_mismatched_counts(tmp_path: Path) -> None:
    write_mnist(tmp_path, 10, 10)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(9))
    with pytest.raises(IDXError, match="10 images but train-labels-idx1-ubyte.gz has 9 labels"):
        load_mnist(tmp_path)


def test_idx_gzip_is_detected_by_name(tmp_path: Path) -> None:
    path = tmp_path / "y.gz"
    with gzip.open(path, "wb") as f:
        f.write((0x0801).to_bytes(4, "big") + (2).to_bytes(4, "big") + bytes([1, 2]))
    assert read_idx(path, 0x0801).tolist() == [1, 2]


def test_cli_reports_idx_errors(tmp_path: Path) -> None:
    proc = run_script("train_perception.py", "dataset=mnist", f"dataset.path={tmp_path}", f"out={tmp_path / 'o'}")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "file not found" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- training and checkpoints
def test_tiny_mnist_training_beats_chance(tmp_path: Path) -> None:
    data = write_mnist(tmp_path / "mnist", 300, 100)
    out = tmp_path / "out"
    proc = run_script(
        "train_perception.py", "dataset=mnist", f"dataset.path={data}", f"out={out}",
        "train.epochs=4", "train.batch_size=32", "train.lr=3e-3",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.5  # chance is 0.1
    assert set(metrics["per_class"]) == {str(d) for d in range(10)}
    assert {"precision", "recall"} <= set(metrics["per_class"]["3"])
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    model, meta = load_checkpoint(out / "model.pt")
    assert meta["input_shape"] == [1, 28, 28] and meta["class_names"][0] == "0"
    assert meta["config"]["dataset"]["kind"] == "mnist"


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = PerceptionNet((4, 128, 64), len(CLASS_NAMES), mean=0.4, std=0.2).eval()
    meta = {"input_shape": [4, 128, 64], "mean": 0.4, "std": 0.2, "class_names": CLASS_NAMES, "hidden": 128,
            "dropout": 0.3, "config": {"a": 1}}  # fmt: skip
    save_checkpoint(tmp_path / "model.pt", model, meta)
    loaded, loaded_meta = load_checkpoint(tmp_path / "model.pt")
    x = torch.randint(0, 256, (3, 4, 128, 64), dtype=torch.uint8)
    assert torch.equal(model(x), loaded(x))
    assert loaded_meta == meta


def test_foreign_checkpoint_is_rejected(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a perception checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.fixture(scope="module")
def frames_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    model = PerceptionNet((4, 128, 64), len(CLASS_NAMES), mean=0.35, std=0.15)
    meta = {"input_shape": [4, 128, 64], "mean": 0.35, "std": 0.15, "class_names": CLASS_NAMES, "hidden": 128,
            "dropout": 0.3, "config": {}}  # fmt: skip
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", model, meta)


def test_shape_mismatch_names_both_shapes(frames_checkpoint: Path) -> None:
    from gymnasium import spaces

    extractor = FramesExtractor(spaces.Box(0, 255, (2, 128, 64), np.uint8))
    with pytest.raises(CheckpointError, match=r"expects input shape \(4, 128, 64\).*have shape \(2, 128, 64\)"):
        extractor.load_backbone(frames_checkpoint)


@pytest.mark.parametrize(
    ("saved_env", "intra_frames", "fits"),
    [
        ({}, [], True),
        ({}, [0.4], False),
        ({"intra_frames": [0.4]}, [0.4], True),
        ({"intra_frames": [0.2]}, [0.4], False),
    ],
    ids=["old_plain", "old_vs_intra", "same_intra", "other_intra"],
)
def test_checkpoint_frame_timing_must_match(saved_env: dict, intra_frames: list[float], fits: bool) -> None:
    meta = {"input_shape": [5, 128, 64], "config": {"dataset": {"kind": "highway"}, "env": saved_env}}
    if fits:
        check_input_shape(meta, (5, 128, 64), "m.pt", intra_frames)
    else:
        with pytest.raises(CheckpointError, match=r"m.pt: .*pretrained with env.intra_frames=.*has env.intra_frames"):
            check_input_shape(meta, (5, 128, 64), "m.pt", intra_frames)
    mnist = {"input_shape": [5, 128, 64], "config": {"dataset": {"kind": "mnist"}, "env": saved_env}}
    check_input_shape(mnist, (5, 128, 64), "m.pt", intra_frames)  # digits have no frame timing


def test_train_agent_rejects_mismatched_checkpoint(frames_checkpoint: Path, tmp_path: Path) -> None:
    proc = run_script(
        "train_agent.py", "preset=smoke", f"run.dir={tmp_path}", f"perception.checkpoint={frames_checkpoint}",
        "env.frame_stack=3",
    )  # fmt: skip
    assert proc.returncode == 2
    assert "(4, 128, 64)" in proc.stderr and "(3, 128, 64)" in proc.stderr and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())


def smoke_ppo(checkpoint: Path | None, freeze: bool):
    from agents.config import AgentConfig
    from agents.ppo import build_ppo
    from agents.vec_env import make_vec_env
    from perception.config import PerceptionConfig

    venv = make_vec_env(EnvConfig(), RewardConfig(), n_envs=1, seed=0)
    agent = AgentConfig(n_steps=32, batch_size=16, n_epochs=2, n_envs=1)
    ckpt = str(checkpoint) if checkpoint else None
    return build_ppo(agent, PerceptionConfig(checkpoint=ckpt, freeze=freeze), venv, seed=0, tensorboard_dir=None)


def test_extractor_matches_classifier_backbone(frames_checkpoint: Path) -> None:
    from stable_baselines3.common.preprocessing import preprocess_obs

    model = smoke_ppo(frames_checkpoint, freeze=True)
    classifier, _ = load_checkpoint(frames_checkpoint)
    env = make_env(EnvConfig(), RewardConfig())
    obs, _ = env.reset(seed=3)
    obs, *_ = env.step(1)
    assert_not_blank(obs)
    policy = model.policy
    tensor, _ = policy.obs_to_tensor(obs)
    # The path PPO takes: SB3 preprocessing (no /255 here), then the extractor's backbone.
    ppo_features = policy.features_extractor.backbone(preprocess_obs(tensor, policy.observation_space, False))
    with torch.no_grad():
        classifier_features = classifier.backbone(torch.as_tensor(obs[None]))
    assert torch.allclose(ppo_features, classifier_features, atol=1e-5)
    model.env.close()


@pytest.mark.parametrize("freeze", [True, False])
def test_hud_prediction_reuses_the_policy_pass_only_when_weights_match(frames_checkpoint: Path, freeze: bool) -> None:
    from agents.policies import AgentPolicy

    model = smoke_ppo(frames_checkpoint, freeze=freeze)
    if not freeze:  # a fine-tuned backbone drifts away from the classifier's
        with torch.no_grad():
            next(model.policy.features_extractor.backbone.parameters()).add_(0.1)
    classifier = load_checkpoint(frames_checkpoint)
    policy = AgentPolicy(model, (classifier[0], classifier[1]["class_names"]))
    env = make_env(EnvConfig(), RewardConfig())
    obs, _ = env.reset(seed=3)
    obs, *_ = env.step(1)
    policy(obs)
    assert (policy._seen is not None) == freeze
    shared = policy.describe(obs)
    policy._seen = None
    assert shared == policy.describe(obs), "the shortcut must give the classifier's own prediction"
    model.env.close()


def test_frozen_backbone_does_not_change_during_ppo(frames_checkpoint: Path) -> None:
    model = smoke_ppo(frames_checkpoint, freeze=True)
    extractor = model.policy.features_extractor
    before = {k: v.clone() for k, v in extractor.backbone.state_dict().items()}
    head_before = extractor.head[0].weight.clone()
    model.learn(64)
    after = extractor.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(head_before, extractor.head[0].weight), "the head must still learn"
    model.env.close()


def test_unfrozen_backbone_fine_tunes(frames_checkpoint: Path) -> None:
    model = smoke_ppo(frames_checkpoint, freeze=False)
    first = model.policy.features_extractor.backbone.convs[0].weight.clone()
    model.learn(64)
    assert not torch.equal(first, model.policy.features_extractor.backbone.convs[0].weight)
    model.env.close()


def test_extractor_kwargs_carry_the_normalization(frames_checkpoint: Path) -> None:
    kwargs = extractor_kwargs(frames_checkpoint, True, 64)
    assert kwargs == {"features_dim": 64, "freeze": True, "mean": pytest.approx(0.35), "std": pytest.approx(0.15)}
    assert extractor_kwargs(None, False, 64) == {"features_dim": 64, "freeze": False}


def test_fact_scores_read_each_fact_off_the_confusion_matrix() -> None:
    from perception.training import fact_scores

    names = {n: i for i, n in enumerate(class_names("scene_brake"))}
    cm = np.zeros((16, 16), dtype=np.int64)
    cm[names["AB"], names["AB"]] = 3  # both facts right
    cm[names["AB"], names["A"]] = 1  # B missed, A right
    cm[names["clear"], names["B"]] = 2  # B false alarm
    cm[names["L"], names["L"]] = 4
    facts = fact_scores(cm)
    assert facts["B"] == {"precision": 0.6, "recall": 0.75, "accuracy": 0.7, "support": 4}
    assert facts["A"]["recall"] == 1.0 and facts["A"]["precision"] == 1.0
    assert facts["L"]["support"] == 4 and facts["R"]["support"] == 0
    assert set(fact_scores(cm[:8, :8])) == {"L", "A", "R"}
