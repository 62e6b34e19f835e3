"""A snapshot ensemble: the final model and checkpoints of the same run vote on each action.

PPO's policy keeps moving between updates, and what one snapshot gets wrong (a car it misreads in a rare
scene, a lane change into a closing follower) a snapshot from some updates earlier often does not: averaging
their action probabilities keeps what they agree on. The members come for free, from the checkpoints a run
saves anyway, and cost one more forward pass each per decision. (Huang et al., "Snapshot Ensembles: Train 1,
get M for free", ICLR 2017, with cyclic learning rates; here plain checkpoints.)
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from envs.io import copy_file

SNAPSHOT_DIR = "snapshots"
"""The members besides ``model.zip``, in a run dir."""
_STEPS = re.compile(r"ckpt_(\d+)\.zip$")


def checkpoint_steps(path: Path) -> int | None:
    """The env steps in a checkpoint's name (``ckpt_<steps>.zip``), None for another name."""
    match = _STEPS.search(path.name)
    return int(match.group(1)) if match else None


def pick_snapshots(checkpoints: list[Path], final_steps: int, every: int, members: int) -> list[Path]:
    """The checkpoints nearest to ``every``, ``2 * every``, ... steps before ``final_steps``: ``members - 1`` of
    them at most, none within ``every / 2`` of the final model or of another pick.

    :param checkpoints: candidate ``ckpt_<steps>.zip`` files
    :param final_steps: the final model's env steps
    :param every: steps between members
    :param members: ensemble size, the final model included
    """
    steps = {p: s for p in checkpoints if (s := checkpoint_steps(p)) is not None}
    chosen: list[Path] = []
    taken = [final_steps]
    for k in range(1, members):
        target = final_steps - k * every
        free = [p for p in steps if all(abs(steps[p] - t) >= every / 2 for t in taken)]
        if not free:
            break
        best = min(free, key=lambda p: abs(steps[p] - target))
        chosen.append(best)
        taken.append(steps[best])
    return chosen


def save_snapshots(checkpoint_dir: Path, run_dir: Path, final_steps: int, every: int, members: int) -> list[Path]:
    """Copy the picked checkpoints to ``<run_dir>/snapshots/`` (replacing what was there); return the copies."""
    target = run_dir / SNAPSHOT_DIR
    if target.exists():
        shutil.rmtree(target)
    picked = pick_snapshots(sorted(checkpoint_dir.glob("ckpt_*.zip")), final_steps, every, members)
    return [copy_file(p, target / p.name) for p in picked]
