"""The snapshot ensemble (agents/snapshots.py): which checkpoints vote, and how the votes combine."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from agents.policies import AgentPolicy
from agents.snapshots import checkpoint_steps, pick_snapshots, save_snapshots


def _ckpts(*steps: int) -> list[Path]:
    return [Path(f"ckpt_{s:09d}.zip") for s in steps]


@pytest.mark.parametrize(
    ("available", "final", "members", "expected"),
    [
        ((110_000, 120_000, 120_320), 120_320, 2, (110_000,)),  # a fresh run: 120k is the final model again
        ((100_000, 110_000, 120_000, 120_320), 120_320, 3, (110_000, 100_000)),
        ((105_508, 115_508, 120_324), 120_324, 2, (105_508,)),  # a resumed run's shifted checkpoints
        ((110_000, 120_320), 120_320, 3, (110_000,)),  # fewer checkpoints than members: as many as there are
        ((110_000, 120_000), 120_320, 1, ()),  # the final model alone
    ],
)
def test_snapshots_are_picked_every_checkpoint_interval_back(
    available: tuple, final: int, members: int, expected: tuple
) -> None:
    picked = pick_snapshots(_ckpts(*available), final, 10_000, members)
    assert [checkpoint_steps(p) for p in picked] == list(expected)


def test_saving_snapshots_replaces_the_previous_ones(tmp_path: Path) -> None:
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    for steps in (110_000, 120_000, 120_320):
        (ckpts / f"ckpt_{steps:09d}.zip").write_bytes(str(steps).encode())
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots" / "ckpt_000050000.zip").write_bytes(b"stale")
    saved = save_snapshots(ckpts, tmp_path, 120_320, 10_000, 2)
    assert [p.name for p in (tmp_path / "snapshots").iterdir()] == ["ckpt_000110000.zip"]
    assert saved[0].read_bytes() == b"110000"
    assert save_snapshots(ckpts, tmp_path, 120_320, 10_000, 1) == [] and not (tmp_path / "snapshots").exists()


class _Fixed:
    """A fake SB3 model whose policy gives the same action probabilities for any observation."""

    def __init__(self, probs: list[float]) -> None:
        distribution = SimpleNamespace(probs=torch.tensor([probs]))
        self.policy = SimpleNamespace(
            obs_to_tensor=lambda obs: (torch.zeros(1), True),
            get_distribution=lambda tensor: SimpleNamespace(distribution=distribution),
        )


def test_snapshots_vote_with_averaged_probabilities() -> None:
    final = _Fixed([0.6, 0.4, 0.0, 0.0, 0.0])
    earlier = [_Fixed([0.0, 0.45, 0.0, 0.0, 0.55]), _Fixed([0.1, 0.5, 0.0, 0.0, 0.4])]
    obs = torch.zeros(4, 128, 64).numpy()
    ensemble = AgentPolicy(final, snapshots=earlier)
    torch.testing.assert_close(
        torch.as_tensor(ensemble.action_probabilities(obs)), torch.tensor([0.7, 1.35, 0.0, 0.0, 0.95]) / 3
    )
    assert ensemble(obs) == 1  # IDLE: second for the final model, first on average
    assert AgentPolicy(final, snapshots=[final])(obs) == 0
