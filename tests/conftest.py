from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"
SMOKE = ["preset=smoke"]


def run_script(script: str, *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``scripts/<script>`` as a user would, capturing output."""
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def config_dir() -> Path:
    return CONFIG_DIR


def assert_not_blank(frames) -> None:
    """Camera frames must show the road: SDL's dummy driver would give all zeros."""
    import numpy as np

    last = np.asarray(frames)[-1]
    assert last.max() > 0 and last.std() > 5, "camera frame is blank"


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny trained run (model.zip, config.yaml, tb/) shared by the evaluation tests."""
    from agents.config import load_train_config
    from agents.training import train

    runs = tmp_path_factory.mktemp("runs")
    overrides = [*SMOKE, "run.name=shared", f"run.dir={runs}", "agent.n_envs=1", "eval.episodes=1"]
    return train(load_train_config(CONFIG_DIR, overrides)).run_dir
