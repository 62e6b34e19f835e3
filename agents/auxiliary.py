"""An auxiliary task for the camera policy: regress the scene's ground-truth facts from its features.

Imitation and PPO ask the features only for whatever predicts the teacher's action or the return, and
the camera student has kept missing the teacher's braking (the clone probe: its SLOWER is taken for
IDLE; the bare policy crashes into the car ahead). Braking depends on the gap and the closing speed to
the car ahead, and a lane change on the gaps in the side lanes: :mod:`envs.facts` reads them from the
simulator, and a linear head on the policy's features learns to predict them (mean squared error), with
its gradient flowing into the features extractor, so that the features the policy acts on have to carry
them: an auxiliary task in the sense of UNREAL (Jaderberg et al., "Reinforcement Learning with
Unsupervised Auxiliary Tasks", 2017), here supervised by privileged ground truth the student never sees
at run time. The head is a training aid: it is not part of the saved policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.preprocessing import preprocess_obs
from torch import nn

from agents.label_fit import LabelFitting
from envs.facts import FACT_NAMES


class FactsHead(nn.Module):
    """A linear map from the policy's features to the :data:`envs.facts.FACT_NAMES`.

    :param features_dim: width of the features extractor's output
    """

    def __init__(self, features_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features_dim, len(FACT_NAMES))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)


def extractor_parameters(policy: Any) -> list[nn.Parameter]:
    """The features extractor's trainable parameters (its last layer only, when the backbone is frozen)."""
    return [p for p in policy.features_extractor.parameters() if p.requires_grad]


def facts_loss(policy: Any, head: FactsHead, obs: torch.Tensor, facts: torch.Tensor) -> torch.Tensor:
    """Mean squared error of ``head`` on ``policy``'s features of ``obs`` against the true ``facts``."""
    features = policy.features_extractor(preprocess_obs(obs, policy.observation_space, policy.normalize_images))
    return nn.functional.mse_loss(head(features), facts)


def explained_variance(predicted: np.ndarray, facts: np.ndarray) -> dict[str, float | None]:
    """Per fact, the share of its variance the prediction explains (R^2; None for a constant fact)."""
    out: dict[str, float | None] = {}
    for j, name in enumerate(FACT_NAMES):
        variance = float(np.var(facts[:, j]))
        error = float(np.mean((predicted[:, j] - facts[:, j]) ** 2))
        out[name] = round(1.0 - error / variance, 4) if variance > 1e-8 else None
    return out


class FactRegression(LabelFitting):
    """After every PPO update, fit :class:`FactsHead` and the features extractor to the scene facts.

    Labels every step with ``info["scene_facts"]`` of the state it reached (the env wrapped in
    :class:`envs.facts.SceneFacts`); the fit is :class:`LabelFitting`'s, with the mean squared error as
    its loss and an Adam of its own over the head and the extractor's trainable parameters (PPO's
    optimizer does not hold the head, and a saved policy must not either).

    :param head: the regression head (kept on the policy's device)
    :param coef: weight of the squared error (> 0)
    :param memory: how many of the latest labelled steps are kept
    :param batch_size: minibatch size of those steps
    :param seed: seeds the draws
    :param learning_rate: the Adam's step size while PPO's is at its start; it follows PPO's schedule
        (``agent.learning_rate_final``) in proportion, so the shared extractor is not moved by the regression
        alone once PPO's steps have shrunk
    """

    LOSS_KEY, SEEN_KEY = "train/aux_loss", "train/aux_labels_seen"

    def __init__(
        self,
        head: FactsHead,
        coef: float,
        memory: int = 4096,
        batch_size: int = 128,
        seed: int = 0,
        learning_rate: float = 3e-4,
    ) -> None:
        if learning_rate <= 0:
            raise ValueError(f"learning_rate: must be > 0, got {learning_rate}")
        super().__init__(coef, memory, batch_size, seed)
        self.head, self.learning_rate = head, learning_rate
        self._parameters: list[nn.Parameter] = []
        self._optimizer: torch.optim.Optimizer | None = None

    def _init_callback(self) -> None:
        policy = self.model.policy
        self.head.to(policy.device)
        self._parameters = [*self.head.parameters(), *extractor_parameters(policy)]
        self._optimizer = torch.optim.Adam(self._parameters, lr=self.learning_rate)

    def labelled(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for obs, info in self.reached():
            if "scene_facts" in info:
                yield obs, np.asarray(info["scene_facts"], dtype=np.float32)

    def loss(self, obs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return facts_loss(self.model.policy, self.head, obs, labels)

    def optimizer(self) -> torch.optim.Optimizer:
        if self._optimizer is None:
            raise RuntimeError("FactRegression: fit before model.learn initialised the callback")
        scale = self.model.policy.optimizer.param_groups[0]["lr"] / self.model.lr_schedule(1.0)
        for group in self._optimizer.param_groups:
            group["lr"] = self.learning_rate * scale
        return self._optimizer

    def parameters(self) -> list[nn.Parameter]:
        return self._parameters
