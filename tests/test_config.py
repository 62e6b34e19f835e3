"""Config composition, group swaps and the one-line errors of the CLI."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from agents.config import TrainConfig, load_eval_config, load_train_config
from agents.schema import ConfigError
from tests.conftest import CONFIG_DIR, run_script


def test_defaults() -> None:
    cfg = load_train_config(CONFIG_DIR, [])
    assert isinstance(cfg, TrainConfig)
    assert cfg.env.id == "highway-fast-v0"
    assert cfg.env.observation == "camera"
    assert (cfg.env.frame_width, cfg.env.frame_height, cfg.env.frame_stack) == (128, 64, 4)
    assert cfg.agent.policy == "cnn"
    assert cfg.reward == load_train_config(CONFIG_DIR, ["reward=fast_safe"]).reward
    assert cfg.safety.enabled and cfg.perception.checkpoint == "runs/perception/default/model.pt"
    assert cfg.resume is False
    default = load_train_config(CONFIG_DIR, ["reward=default"]).reward
    assert (default.collision, default.high_speed, default.right_lane) == (-1.0, 0.4, 0.1)  # highway-env's


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONFIG_DIR / "reward").glob("*.yaml")))
def test_reward_swap(option: str) -> None:
    cfg = load_train_config(CONFIG_DIR, [f"reward={option}"])
    expected = yaml.safe_load((CONFIG_DIR / "reward" / f"{option}.yaml").read_text())
    for key, value in expected.items():
        assert getattr(cfg.reward, key) == value


def test_reward_configs_differ() -> None:
    weights = {
        o: load_train_config(CONFIG_DIR, [f"reward={o}"]).reward.weights() for o in ("default", "cautious", "speed")
    }
    assert weights["cautious"]["collision"] < weights["default"]["collision"]
    assert weights["speed"]["high_speed"] > weights["default"]["high_speed"]


@pytest.mark.parametrize(
    ("option", "env_id"),
    [("highway_fast", "highway-fast-v0"), ("highway", "highway-v0"), ("merge", "merge-v1")],
)
def test_env_swap(option: str, env_id: str) -> None:
    assert load_train_config(CONFIG_DIR, [f"env={option}"]).env.id == env_id


def test_agent_swap_sets_observation() -> None:
    cfg = load_train_config(CONFIG_DIR, ["agent=ppo_mlp"])
    assert cfg.agent.policy == "mlp" and cfg.env.observation == "kinematics"


def test_key_overrides_and_preset() -> None:
    cfg = load_train_config(CONFIG_DIR, ["preset=smoke", "agent.total_timesteps=5e4", "run.name=try1"])
    assert cfg.agent.total_timesteps == 50_000  # the command line wins over the preset
    assert cfg.agent.n_steps == 64 and cfg.run.name == "try1"
    assert cfg.perception.checkpoint is None, "the smoke preset needs no perception checkpoint"


def test_safety_and_faults_swap() -> None:
    cfg = load_train_config(CONFIG_DIR, ["safety=off", "faults=dropout30"])
    assert not cfg.safety.enabled and cfg.faults.dropout == 0.3
    assert load_train_config(CONFIG_DIR, ["safety=rss_paper"]).safety.response_time == 1.0
    exact, rss = (load_train_config(CONFIG_DIR, [f"safety={name}"]).safety for name in ("rss_exact", "rss"))
    assert exact.exact_braking_need and dataclasses.replace(exact, exact_braking_need=False) == rss


@pytest.mark.parametrize(
    ("n_envs", "unmonitored", "safety", "shadow"),
    [(2, 0, "rss", 2), (3, 1, "rss", 2), (1, 1, "rss", 0), (2, 0, "off", 0)],
)
def test_all_shadow_envs_counts_the_monitored_ones(n_envs: int, unmonitored: int, safety: str, shadow: int) -> None:
    overrides = [f"agent.n_envs={n_envs}", f"agent.unmonitored_envs={unmonitored}", "agent.shadow_envs=all"]
    cfg = load_train_config(CONFIG_DIR, [*overrides, f"safety={safety}"])
    assert cfg.agent.resolved_shadow_envs(monitor=cfg.safety.enabled) == shadow


def test_saved_config_has_one_key_per_group() -> None:
    saved = load_train_config(CONFIG_DIR, []).saved()
    assert list(saved) == [
        "env", "reward", "safety", "faults", "agent", "perception", "imitation", "driver", "shield", "run", "eval"
    ]  # fmt: skip


def test_driver_style_comes_from_its_group() -> None:
    from envs.drivers import DriverParams

    assert load_train_config(CONFIG_DIR, []).driver == DriverParams()  # the YAML spells out the defaults
    assert load_train_config(CONFIG_DIR, ["driver.rss_lookahead=0"]).driver.rss_lookahead == 0.0
    assert load_eval_config(CONFIG_DIR, ["policy=rules", "driver.headway=0.5"]).driver.headway == 0.5


@pytest.mark.parametrize(
    ("overrides", "key", "value"),
    [
        (["env.vehicles_density=1.5"], "env.vehicles_density", 1.5),  # evaluate.py's documented example
        (["reward=cautious", "reward.override_spares_slower=true"], "reward.override_spares_slower", True),
        (["safety=rss_paper", "safety.cut_in_ttc=2.5"], "safety.cut_in_ttc", 2.5),
        (["shield=none", "shield.threshold=0.3"], "shield.threshold", 0.3),
    ],
)
def test_any_schema_key_can_be_set_where_the_option_leaves_it_out(
    overrides: list[str], key: str, value: object
) -> None:
    group, _, name = key.partition(".")
    option = next((o.partition("=")[2] for o in overrides if o.startswith(f"{group}=")), None)
    if option is not None:  # the case is only a test of the mechanism when the option's file omits the key
        assert name not in yaml.safe_load((CONFIG_DIR / group / f"{option}.yaml").read_text())
    assert getattr(getattr(load_train_config(CONFIG_DIR, overrides), group), name) == value
    if group in ("env", "safety"):
        assert getattr(getattr(load_eval_config(CONFIG_DIR, ["policy=rules", *overrides]), group), name) == value


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (
            ["reward=nope"],
            "reward=nope: unknown option for group 'reward' "
            "(choose from: cautious, comfort, default, fast_safe, fast_safe_normalized, fast_safe_raw, speed)",
        ),
        (["agent.nope=1"], "agent.nope: unknown key in 'agent' (allowed: "),
        (["+env.nope=1"], "env.nope: unknown key in 'env' (allowed: "),
        (["nope=1"], "nope: unknown key in the config"),
        (["agent.total_timesteps=many"], "agent.total_timesteps: expected an integer, got 'many'"),
        (["agent.learning_rate=2"], "agent.learning_rate: must be in (0, 1)"),
        (["agent.learning_rate_final=0.1"], "agent.learning_rate_final: must be null or in [0, learning_rate"),
        (["agent.learning_rate_final=-1e-4"], "agent.learning_rate_final: must be null or in [0, learning_rate"),
        (["env.observation=lidar"], "env.observation: 'lidar' is not allowed"),
        (["env.id=nowhere-v0"], "env.id: unknown env id 'nowhere-v0'"),
        (["agent=ppo_mlp", "env.observation=camera"], "agent.policy: 'mlp' does not fit"),
        (["run.seed=1000000"], "run.seed: must be in"),
        (["agent.gamma=0.9"], "reward.shaping_gamma: must equal agent.gamma (0.9)"),
        (["agent=ppo_mlp", "faults=dropout30"], "faults: camera faults need env.observation=camera"),
        (["perception.freeze=true", "perception.checkpoint=null"], "perception.freeze: needs perception.checkpoint"),
        (
            ["agent.n_envs=2", "agent.unmonitored_envs=1", "agent.shadow_envs=2"],
            "agent.shadow_envs: must be all or in 0..n_envs - unmonitored_envs (1), got 2",
        ),
        (["safety=off", "agent.shadow_envs=1"], "agent.shadow_envs: a shadow monitor needs the monitor"),
        (["agent.shadow_envs=some"], "agent.shadow_envs: expected int | 'all', got 'some'"),
        (["agent.train_densities=[1.0,0]"], "agent.train_densities: every density must be > 0, got [1.0, 0.0]"),
        (["agent.train_densities=1.5"], "agent.train_densities: expected list of float, got 1.5"),
        (
            ["env=merge", "agent.train_densities=[1.5]"],
            "agent.train_densities: traffic density applies to highway envs only, not merge-v1",
        ),
        (
            ["agent.n_envs=2", "agent.train_densities=[1.0,1.25,1.5]"],
            "agent.train_densities: 3 densities for 2 training envs (agent.n_envs): some would never be trained on",
        ),
        (["resume=true"], "resume: needs run.name"),
        (["resume=true", "run.name=missing"], "resume: no saved config at"),
        (["agent.total_timesteps=[1"], "no viable alternative"),
    ],
)
def test_bad_config_errors(overrides: list[str], fragment: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_train_config(CONFIG_DIR, [*overrides, f"run.dir={tmp_path}"])
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["reward=nope"], "error: reward=nope: unknown option for group 'reward'"),
        (["agent.total_timesteps=abc"], "error: agent.total_timesteps: expected an integer"),
        (["agent.bogus=1"], "error: agent.bogus: unknown key in 'agent'"),
        (["resume=true", "run.name=ghost"], "error: resume: no saved config at"),
        (["perception.checkpoint=/nonexistent/model.pt"], "error: perception.checkpoint: /nonexistent/model.pt"),
    ],
)
def test_cli_errors_are_one_line(args: list[str], fragment: str, tmp_path: Path) -> None:
    proc = run_script("train_agent.py", *args, f"run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(fragment), proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir()), "nothing may be written before the config is valid"
