"""Training callbacks: driving stats, progress bar, atomic checkpoints, graceful stop."""

from __future__ import annotations

import signal
import time
from collections import deque
from pathlib import Path
from types import FrameType

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from envs.io import save_model

CHECKPOINT_GLOB = "ckpt_*.zip"


class DrivingStats(BaseCallback):
    """Tracks crash rate, speed and safety-monitor overrides of training episodes; logs them to TensorBoard.

    :param window: number of recent episodes (and of recent steps x 100 for speed and overrides) averaged
    """

    def __init__(self, window: int = 50) -> None:
        super().__init__()
        self.crashes: deque[float] = deque(maxlen=window)
        self.returns: deque[float] = deque(maxlen=window)
        self.speeds: deque[float] = deque(maxlen=window * 100)
        self.overrides: deque[float] = deque(maxlen=window * 100)

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "speed" in info:
                self.speeds.append(float(info["speed"]))
            if "safety" in info:  # only envs that run the monitor
                self.overrides.append(float(info["safety"]["overridden"]))
            episode = info.get("episode")
            if episode is not None:
                self.crashes.append(float(episode.get("crashed", False)))
                self.returns.append(float(episode["r"]))
        return True

    def _on_rollout_end(self) -> None:
        if self.crashes:
            self.logger.record("rollout/crash_rate", self.crash_rate)
        if self.speeds:
            self.logger.record("rollout/mean_speed", self.mean_speed)
        if self.overrides:
            self.logger.record("rollout/intervention_rate", self.intervention_rate)

    @property
    def crash_rate(self) -> float:
        return float(np.mean(self.crashes)) if self.crashes else float("nan")

    @property
    def mean_speed(self) -> float:
        return float(np.mean(self.speeds)) if self.speeds else float("nan")

    @property
    def intervention_rate(self) -> float:
        """Share of recent steps (of monitored envs) on which the safety monitor overrode the agent."""
        return float(np.mean(self.overrides)) if self.overrides else float("nan")

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")


class ProgressBar(BaseCallback):
    """tqdm bar over environment steps with steps/s, recent return, crash rate and speed.

    :param total: the step count at which training ends
    :param stats: the DrivingStats callback to show
    """

    def __init__(self, total: int, stats: DrivingStats) -> None:
        super().__init__()
        self.total = total
        self.stats = stats
        self.bar = None
        self._last_post = 0.0

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=self.total,
            initial=self.num_timesteps,
            unit="step",
            dynamic_ncols=True,
            smoothing=0.05,
        )

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.bar.n)
        if time.monotonic() - self._last_post > 1.0:
            self._last_post = time.monotonic()
            s = self.stats
            self.bar.set_postfix_str(
                f"return {s.mean_return:.1f} crash {s.crash_rate:.0%} speed {s.mean_speed:.1f} m/s",
                refresh=False,
            )
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Checkpointer(BaseCallback):
    """Saves ``ckpt_<steps>.zip`` atomically every ``every`` env steps; keeps the last ``keep``.

    :param directory: checkpoint folder
    :param every: env steps between checkpoints
    :param keep: number of most recent checkpoints kept on disk
    """

    def __init__(self, directory: str | Path, every: int, keep: int = 3) -> None:
        super().__init__()
        if every < 1 or keep < 1:
            raise ValueError(f"every and keep must be >= 1, got {every}, {keep}")
        self.directory = Path(directory)
        self.every = every
        self.keep = keep
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last >= self.every:
            self.save()
        return True

    def save(self) -> Path:
        """Write a checkpoint now and prune old ones."""
        self._last = self.num_timesteps
        path = save_model(self.model, self.directory / f"ckpt_{self.num_timesteps:09d}.zip")
        for old in sorted(self.directory.glob(CHECKPOINT_GLOB))[: -self.keep]:
            old.unlink(missing_ok=True)
        return path


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The checkpoint with the highest step count, or None."""
    found = sorted(Path(directory).glob(CHECKPOINT_GLOB))
    return found[-1] if found else None


class StopOnSignal(BaseCallback):
    """Turns SIGINT/SIGTERM into a clean stop of ``learn()`` at the next env step.

    Use as a context manager around ``learn()``; the previous handlers come back on exit.
    """

    def __init__(self) -> None:
        super().__init__()
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum

    def __enter__(self) -> StopOnSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _on_step(self) -> bool:
        return self.received is None
