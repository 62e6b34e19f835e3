"""Evaluation: metrics, baselines, videos, errors and the comparison table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from agents.config import EvalConfig, load_eval_config
from agents.eval_job import format_metrics, run_evaluation
from agents.evaluation import EpisodeResult, flagged_lane_change, run_episode, summarize, wilson_interval
from agents.policies import BASELINES, LookaheadPolicy, make_baseline
from agents.schema import ConfigError
from envs import EnvConfig, RewardConfig, make_env
from envs.config import SafetyConfig
from envs.planner import PlannerParams
from envs.scene import CRASH_KINDS
from tests.conftest import CONFIG_DIR, assert_not_blank, run_script

METRIC_KEYS = {
    "episodes", "mean_return", "std_return", "mean_return_ci95", "collision_rate", "collision_rate_ci95",
    "mean_speed", "mean_distance", "lane_changes_per_episode", "intervention_rate", "interventions_by_reason",
    "crashes_by_kind", "reward_terms", "per_episode",
}  # fmt: skip
EPISODE_KEYS = {"seed", "return", "crashed", "crash_kind", "mean_speed", "interventions", "min_ttc"}
KINEMATICS = EnvConfig(observation="kinematics")


def evaluate_cli(*args: str, out: Path) -> dict:
    proc = run_script("evaluate.py", *args, f"out={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "metrics.json").read_text())


def test_metrics_keys_and_consistency(tmp_path: Path) -> None:
    m = evaluate_cli("policy=random", "episodes=4", "env.observation=kinematics", out=tmp_path)
    assert METRIC_KEYS <= set(m)
    rows = m["per_episode"]
    assert len(rows) == m["episodes"] == 4
    assert all(EPISODE_KEYS <= set(r) for r in rows)
    assert m["mean_return"] == pytest.approx(np.mean([r["return"] for r in rows]))
    assert m["collision_rate"] == pytest.approx(np.mean([r["crashed"] for r in rows]))
    assert all((r["crash_kind"] in CRASH_KINDS) == r["crashed"] for r in rows)
    assert sum(m["crashes_by_kind"].values()) == sum(r["crashed"] for r in rows)
    lo, hi = m["collision_rate_ci95"]
    assert lo <= m["collision_rate"] <= hi
    lo, hi = m["mean_return_ci95"]
    assert lo <= m["mean_return"] <= hi
    speeds = [r["mean_speed"] * r["steps"] for r in rows]
    assert m["mean_speed"] == pytest.approx(sum(speeds) / sum(r["steps"] for r in rows))
    assert {"collision", "high_speed", "right_lane"} <= set(m["reward_terms"])
    assert [r["seed"] for r in rows] == [1_000_000 + i for i in range(4)]
    csv_lines = (tmp_path / "episodes.csv").read_text().strip().splitlines()
    assert len(csv_lines) == 5 and csv_lines[0].startswith("seed,return,crashed")


def test_seed_offset_and_determinism(tmp_path: Path) -> None:
    cfg = load_eval_config(CONFIG_DIR, ["policy=random", "episodes=2", "seed=7", "env.observation=kinematics"])
    first, _ = run_evaluation(EvalConfig(**{**cfg.__dict__, "out": str(tmp_path / "a")}))
    second, _ = run_evaluation(EvalConfig(**{**cfg.__dict__, "out": str(tmp_path / "b")}))
    assert first["seeds"] == [1_000_007, 1_000_008]
    assert first["per_episode"] == second["per_episode"]


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("slower", lambda r: r.crashed or abs(r.speeds[-1] - 20.0) < 0.5),
        ("faster", lambda r: r.crashed or max(r.speeds) > 29.0),
        ("idle", lambda r: r.crashed or abs(r.speeds[-1] - 25.0) < 1.0),
    ],
)
def test_constant_baselines_behave_as_named(name: str, check) -> None:
    env = make_env(KINEMATICS, RewardConfig())
    results = [run_episode(env, make_baseline(name), seed) for seed in (1_000_000, 1_000_001)]
    assert all(check(r) for r in results), [(r.crashed, r.speeds[-3:]) for r in results]


def test_crashes_counted_by_kind() -> None:
    env = make_env(KINEMATICS, RewardConfig())  # no monitor: always-FASTER crashes in nearly every episode
    results = [run_episode(env, make_baseline("faster"), seed) for seed in (1_000_000, 1_000_001, 1_000_002)]
    assert all(bool(r.crash_kind) == r.crashed for r in results)
    kinds = summarize(results)["crashes_by_kind"]
    assert set(kinds) <= set(CRASH_KINDS) and sum(kinds.values()) == sum(r.crashed for r in results) > 0
    assert "other" not in kinds, "every crash here is with another car"


def test_idm_baseline_drives_the_ego() -> None:
    from highway_env.vehicle.behavior import IDMVehicle

    env = make_env(KINEMATICS, RewardConfig())
    policy = make_baseline("idm")
    result = run_episode(env, policy, 1_000_000)
    assert isinstance(env.unwrapped.vehicle, IDMVehicle)
    assert env.unwrapped.vehicle in env.unwrapped.road.vehicles
    assert result.steps > 5 and 15.0 < result.mean_speed < 31.0


def test_rules_baseline_overtakes_without_crashing() -> None:
    env = make_env(KINEMATICS, RewardConfig())  # no monitor: the rules alone keep it safe
    results = [run_episode(env, make_baseline("rules"), seed) for seed in (1_000_000, 1_000_001, 1_000_002)]
    assert not any(r.crashed for r in results)
    assert sum(r.lane_changes for r in results) >= 3, "it must overtake, not just follow"
    assert np.mean([r.mean_speed for r in results]) > 22.0


def test_random_baseline_is_seeded() -> None:
    a, b = make_baseline("random"), make_baseline("random")
    a.reset(None, 5)
    b.reset(None, 5)
    assert [a(None) for _ in range(20)] == [b(None) for _ in range(20)]


def test_baseline_names() -> None:
    assert set(BASELINES) == {"random", "idle", "slower", "faster", "idm", "rules", "guarded", "lookahead"}
    with pytest.raises(ValueError, match="unknown policy"):
        make_baseline("teleport")


def test_lookahead_baseline_plans_on_the_env_it_plays() -> None:
    env = make_env(KINEMATICS, RewardConfig(), safety=SafetyConfig())
    policy = make_baseline("lookahead")
    assert isinstance(policy, LookaheadPolicy) and policy.planner.horizon == 10
    env.reset(seed=1_000_000)
    policy.reset(env, 1_000_000)
    assert policy(None) == policy.planner.act(env)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([], PlannerParams()),
        (["planner.horizon=3", "planner.override_cost=15", "planner.reach=150"], PlannerParams(3, 15.0, 150.0)),
    ],
)
def test_lookahead_baseline_takes_its_planner_from_the_config(overrides: list[str], expected: PlannerParams) -> None:
    cfg = load_eval_config(CONFIG_DIR, ["policy=lookahead", "env.observation=kinematics", *overrides])
    assert cfg.planner == expected
    planner = make_baseline("lookahead", planner=cfg.planner).planner
    assert (planner.horizon, planner.override_cost, planner.reach) == (
        expected.horizon,
        expected.override_cost,
        expected.reach,
    )


@pytest.mark.parametrize(
    ("override", "fragment"),
    [("planner.horizon=0", "horizon: must be >= 1"), ("planner.override_cost=-1", "override_cost: must be >= 0")],
)
def test_lookahead_baseline_config_errors(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_eval_config(CONFIG_DIR, ["policy=lookahead", override])


def test_wilson_interval() -> None:
    lo, hi = wilson_interval(0, 100)
    assert lo == 0.0 and hi == pytest.approx(0.0370, abs=1e-3)
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


def test_summarize_pools_speed_over_steps() -> None:
    results = [
        EpisodeResult(seed=1, episode_return=2.0, crashed=True, speeds=[10.0]),
        EpisodeResult(seed=2, episode_return=4.0, speeds=[20.0, 20.0, 20.0]),
    ]
    m = summarize(results)
    assert m["mean_speed"] == pytest.approx(17.5)  # per step, not per episode (15)
    assert m["collision_rate"] == 0.5 and m["mean_return"] == 3.0
    assert math.isclose(m["mean_length"], 2.0)
    assert m["boxed_in_share"] is None  # these results carry no traffic flags


def test_summarize_splits_speed_by_traffic() -> None:
    results = [
        EpisodeResult(seed=1, speeds=[20.0, 30.0], boxed_in=[True, False]),
        EpisodeResult(seed=2, speeds=[22.0, 28.0], boxed_in=[True, False]),
    ]
    m = summarize(results)
    assert m["boxed_in_share"] == 0.5
    assert m["speed_boxed_in"] == pytest.approx(21.0) and m["speed_free"] == pytest.approx(29.0)
    assert "50.0% of steps (21.00 m/s there, 29.00 m/s elsewhere)" in format_metrics(m)


def test_summarize_counts_floor_traps_and_slow_leaders_per_step() -> None:
    results = [
        EpisodeResult(seed=1, speeds=[20.0] * 3, floor_traps=3, slow_leaders=1),
        EpisodeResult(seed=2, speeds=[25.0] * 5, floor_traps=1, slow_leaders=1),
    ]
    m = summarize(results)
    assert m["floor_trap_share"] == pytest.approx(0.5)
    assert m["slow_leader_share"] == pytest.approx(0.25)
    assert "floor traps   50.0% of steps" in format_metrics(m)
    assert "slow leader   25.0% of steps" in format_metrics(m)


@pytest.mark.parametrize(
    ("safety", "flagged"),
    [
        ({"proposed_action": 0, "overridden": True, "reason": "rss_rear"}, True),
        ({"proposed_action": 2, "overridden": True, "reason": "ttc_front"}, True),
        ({"proposed_action": 0, "overridden": True, "reason": "no_lane"}, False),  # a no-op in highway-env
        ({"proposed_action": 2, "overridden": True, "reason": "lane_change_aborted"}, False),  # a reflex, not the check
        ({"proposed_action": 2, "overridden": True, "reason": "emergency_brake"}, False),
        ({"proposed_action": 0, "overridden": False, "reason": ""}, False),
        ({"proposed_action": 3, "overridden": True, "reason": "rss_front"}, False),  # not a lane change
        ({}, False),  # no monitor
    ],
)
def test_flagged_lane_change(safety: dict, flagged: bool) -> None:
    assert flagged_lane_change(safety) is flagged


@pytest.mark.parametrize("shadow", [True, False])
def test_flagged_lane_changes_counted_under_either_monitor(shadow: bool) -> None:
    env = make_env(KINEMATICS, RewardConfig(), safety=SafetyConfig(shadow=shadow))
    seeds = (1_000_000, 1_000_001, 1_000_002)
    results = [run_episode(env, make_baseline("random", 5), seed) for seed in seeds]
    m = summarize(results)
    assert m["flagged_lane_changes_per_episode"] == pytest.approx(np.mean([r.flagged_lane_changes for r in results]))
    assert sum(r.flagged_lane_changes for r in results) > 0, "a random policy proposes unsafe lane changes"
    assert 0 <= m["flagged_lane_change_crashes"] <= sum(r.crashed for r in results)
    assert "risky merges" in format_metrics(m)


def test_no_flagged_lane_changes_without_a_monitor() -> None:
    env = make_env(KINEMATICS, RewardConfig())
    results = [run_episode(env, make_baseline("random", 5), seed) for seed in (1_000_000, 1_000_001)]
    assert summarize(results)["flagged_lane_changes_per_episode"] == 0


def read_video(path: Path) -> tuple[dict, list[np.ndarray]]:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return meta, [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader]


def test_video_decodes_with_every_simulation_frame(smoke_run: Path, tmp_path: Path) -> None:
    m = evaluate_cli(f"run={smoke_run}", "episodes=1", "video=1", out=tmp_path)
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1
    meta, frames = read_video(videos[0])
    assert meta["codec"] == "h264"
    steps = m["per_episode"][0]["steps"]
    assert len(frames) == 1 + steps * 5  # highway-fast: 5 simulation frames per decision
    assert frames[0].shape == (150 + 72, 600, 3)
    assert meta["fps"] == pytest.approx(5.0)
    assert_not_blank([f[:150].mean(axis=2) for f in frames[-3:]])
    inset = frames[-1][150 + 4 : 150 + 68, -132:-4]
    assert inset.std() > 5, "the camera inset must show the CNN's frames"


def gradient_frames(n: int, width: int, height: int) -> list[np.ndarray]:
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    return [np.broadcast_to(np.roll(ramp, 3 * i)[None, :, None], (height, width, 3)).copy() for i in range(n)]


@pytest.mark.parametrize("size", [(64, 32), (33, 17)])  # odd sides are padded for yuv420p
def test_encoder_writes_in_the_background_and_splits_frames_freely(size: tuple[int, int], tmp_path: Path) -> None:
    from agents.video import EncoderPipe

    width, height = size
    frames = gradient_frames(7, width, height)
    encoder = EncoderPipe(tmp_path / "clip.mp4", size, fps=5)
    for frame in frames:
        top, bottom = frame[: height // 2].tobytes(), frame[height // 2 :].tobytes()
        encoder.send(top, bottom)  # as the recorder sends the scene, then the HUD band
    pending = encoder.finish()
    with pytest.raises(ValueError, match="after finish"):
        encoder.send(frames[0].tobytes())
    assert pending.wait() == tmp_path / "clip.mp4"
    meta, decoded = read_video(tmp_path / "clip.mp4")
    assert meta["codec"] == "h264" and len(decoded) == len(frames)
    assert decoded[0].shape[:2] == (height + height % 2, width + width % 2)
    assert np.abs(decoded[3][:height, :width].astype(int) - frames[3]).mean() < 8
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_encoder_discard_and_failure_leave_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from agents import video

    encoder = video.EncoderPipe(tmp_path / "dropped.mp4", (32, 16), fps=5)
    encoder.send(bytes(32 * 16 * 3))
    encoder.discard()
    assert list(tmp_path.iterdir()) == []

    script = "import sys; sys.stdin.buffer.read(); sys.stderr.write('no encoder here'); sys.exit(1)"
    failing = [sys.executable, "-c", script]
    monkeypatch.setattr(video, "ffmpeg_command", lambda *args: failing)
    encoder = video.EncoderPipe(tmp_path / "failed.mp4", (32, 16), fps=5)
    encoder.send(bytes(32 * 16 * 3))
    with pytest.raises(RuntimeError, match=r"failed\.mp4: no encoder here"):
        encoder.wait()
    assert list(tmp_path.iterdir()) == []


def test_play_finishes_earlier_videos_when_an_episode_fails(tmp_path: Path) -> None:
    from agents.eval_job import play

    class FailsInSecondEpisode:
        describe = None

        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, obs: object) -> int:
            self.calls += 1
            if self.calls > 3:  # the first episode is 2 steps long (duration 2 s)
                raise RuntimeError("policy failed")
            return 1

    env = make_env(EnvConfig(observation="kinematics", duration=2), RewardConfig(), render_mode="rgb_array")
    with pytest.raises(RuntimeError, match="policy failed"):
        play(env, FailsInSecondEpisode(), [1_000_000, 1_000_001], 2, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode_1000000.mp4"]
    meta, frames = read_video(tmp_path / "episode_1000000.mp4")
    assert len(frames) == 1 + 2 * 5
    assert_not_blank([f[:150].mean(axis=2) for f in frames[-2:]])


@pytest.mark.parametrize(("env_id", "fast"), [("highway-fast-v0", True), ("highway-v0", True), ("merge-v1", False)])
def test_fast_frames_match_highway_env_drawing(env_id: str, fast: bool) -> None:
    from highway_env.vehicle.graphics import VehicleGraphics

    from agents.rendering import FrameRenderer

    env = make_env(EnvConfig(id=env_id, observation="kinematics"), RewardConfig(), render_mode="rgb_array")
    env.reset(seed=3)
    quick, reference = FrameRenderer(env.unwrapped), FrameRenderer(env.unwrapped, fast=False)
    for action in (3, 2, 3, 0, 3, 3):
        env.step(action)
        a, b = quick.render_array().astype(int), reference.render_array().astype(int)
        assert (quick._road_backdrop() is not None) == fast
        assert a.shape == b.shape == (*reversed(quick.size), 3)
        assert_not_blank([a.mean(axis=2)])
        # Same road and cars, up to one pixel of rounding: compare against b shifted by <= 1 px.
        shifted = [np.roll(b, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        diff = np.min([np.abs(a - c).max(axis=2) for c in shifted], axis=0)[1:-1, 1:-1]
        assert (diff > 40).mean() < 0.01
        for vehicle in env.unwrapped.road.vehicles:  # every car on screen, in its own colour
            x, y = ((vehicle.position - quick.screen.origin) * quick.screen.scaling).astype(int)
            if 0 <= x < a.shape[1] and 0 <= y < a.shape[0]:
                assert np.abs(a[y, x] - np.array(VehicleGraphics.get_color(vehicle)[:3])).max() < 10


def test_eval_overrides_on_a_run(smoke_run: Path) -> None:
    cfg = load_eval_config(CONFIG_DIR, [f"run={smoke_run}", "env.vehicles_density=1.5", "reward=cautious"])
    assert cfg.env.vehicles_density == 1.5 and cfg.reward.collision == -5.0
    assert cfg.env.observation == "camera" and cfg.policy == "agent"
    assert load_eval_config(CONFIG_DIR, [f"policy={smoke_run}"]).run == str(smoke_run)
    assert load_eval_config(CONFIG_DIR, [f"run={smoke_run}", "env=merge"]).env.id == "merge-v1"


def test_eval_sets_a_key_the_run_predates(smoke_run: Path, tmp_path: Path) -> None:
    saved = yaml.safe_load((smoke_run / "config.yaml").read_text())
    del saved["reward"]["override_repeat"], saved["env"]["intra_frames"]  # as saved before those keys existed
    saved["reward"]["collision"] = -7.0
    old = tmp_path / "old_run"
    old.mkdir()
    (old / "config.yaml").write_text(yaml.safe_dump(saved))
    (old / "model.zip").symlink_to(smoke_run / "model.zip")
    assert load_eval_config(CONFIG_DIR, [f"run={old}"]).reward.override_repeat == RewardConfig().override_repeat
    cfg = load_eval_config(CONFIG_DIR, [f"run={old}", "reward.override_repeat=-2.0", "env.intra_frames=[0.4]"])
    assert cfg.reward.override_repeat == -2.0 and cfg.env.intra_frames == [0.4]
    assert cfg.reward.collision == -7.0, "the run's own values stay"


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("no_model", "error: run: no model.zip in"),
        ("mismatch", "expects observations of shape (4, 128, 64), but this env config gives (2, 128, 64)"),
        ("unwritable", "error: out: cannot write to"),
        ("unknown_policy", "error: policy: unknown policy 'teleport'"),
        ("agent_without_run", "error: policy: 'agent' needs run="),
    ],
)
def test_evaluate_errors(case: str, fragment: str, smoke_run: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = {
        "no_model": [f"run={tmp_path}"],
        "mismatch": [f"run={smoke_run}", "env.frame_stack=2", f"out={tmp_path / 'o'}"],
        "unwritable": ["policy=idle", f"out={blocker / 'sub'}"],
        "unknown_policy": ["policy=teleport"],
        "agent_without_run": [],
    }[case]
    proc = run_script("evaluate.py", *args, "episodes=1")
    assert proc.returncode == 2
    assert fragment in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_compare_two_evaluations(tmp_path: Path) -> None:
    for policy in ("slower", "faster"):
        evaluate_cli(f"policy={policy}", "episodes=2", "env.observation=kinematics", out=tmp_path / policy)
    plot = tmp_path / "cmp.png"
    proc = run_script("compare.py", str(tmp_path / "slower"), str(tmp_path / "faster"), "--plot", str(plot))
    assert proc.returncode == 0, proc.stderr
    table = [ln for ln in proc.stdout.splitlines() if ln.startswith("|")]
    assert len(table) == 4 and "| slower |" in table[2] and "| faster |" in table[3]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = run_script("compare.py", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "metrics.json: not found" in missing.stderr


def test_learning_curves_written(smoke_run: Path) -> None:
    png = smoke_run / "learning_curves.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
