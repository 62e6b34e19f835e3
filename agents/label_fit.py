"""Fitting the policy to labelled steps between PPO updates: the part corrections, distillation and the
auxiliary scene-fact regression share."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn


class LabelFitting(BaseCallback):
    """Collect (observation, label) pairs during rollouts; after every PPO update fit the policy to them.

    Subclasses say which steps carry a label (:meth:`labelled`). The latest ``memory`` pairs are kept;
    after each update (and once at the end of training) the callback takes up to ``FIT_BATCHES``
    minibatch gradient steps on ``coef`` times their :meth:`loss` (by default the cross-entropy of the
    policy's action logits to an action label), with :meth:`optimizer` (by default PPO's own), on a
    random draw from that memory. The rollout itself is untouched: PPO's data stays on-policy.

    :param coef: weight of the cross-entropy (> 0)
    :param memory: how many of the latest labelled steps are kept
    :param batch_size: minibatch size of those steps
    :param seed: seeds the draws
    """

    FIT_BATCHES = 8
    """Minibatches per fit: bounds its cost when the memory is large."""
    LOSS_KEY, SEEN_KEY = "train/label_loss", "train/labels_seen"
    """TensorBoard keys of the mean fitted loss and of the labelled steps collected so far."""

    def __init__(self, coef: float, memory: int = 1024, batch_size: int = 128, seed: int = 0) -> None:
        if coef <= 0:
            raise ValueError(f"coef: must be > 0, got {coef}")
        if memory < 1 or batch_size < 1:
            raise ValueError(f"memory and batch_size must be >= 1, got {memory}, {batch_size}")
        super().__init__()
        self.coef, self.batch_size = coef, batch_size
        self.obs: deque[np.ndarray] = deque(maxlen=memory)
        self.labels: deque[Any] = deque(maxlen=memory)
        self.collected = 0
        self.rng = np.random.default_rng(seed)

    def weight(self) -> float:
        """The cross-entropy's weight for the next fit (``coef``; subclasses may schedule it)."""
        return self.coef

    def labelled(self) -> Iterator[tuple[np.ndarray, Any]]:
        """The (observation, label) pairs of the step just taken (all envs); read ``self.locals``."""
        raise NotImplementedError

    def loss(self, obs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The unweighted loss of a minibatch: here the cross-entropy of the policy's action logits."""
        logits = self.model.policy.get_distribution(obs).distribution.logits
        return nn.functional.cross_entropy(logits, labels)

    def optimizer(self) -> torch.optim.Optimizer:
        """What takes the fit's gradient steps: here PPO's own optimizer."""
        return self.model.policy.optimizer

    def parameters(self) -> list[nn.Parameter]:
        """What the fit's gradient norm is clipped over: here the policy's parameters."""
        return list(self.model.policy.parameters())

    def reached(self) -> Iterator[tuple[np.ndarray, dict]]:
        """(observation, info) of the state each env has just reached: after an episode ended that state is
        the reset's, whose info is in the vec env's ``reset_infos``."""
        new_obs, dones, infos = self.locals["new_obs"], self.locals["dones"], self.locals["infos"]
        reset_infos = self.training_env.unwrapped.reset_infos
        for i in range(len(dones)):
            yield new_obs[i], reset_infos[i] if dones[i] else infos[i]

    def _on_step(self) -> bool:
        for obs, label in self.labelled():
            self.obs.append(np.array(obs))
            self.labels.append(label)
            self.collected += 1
        return True

    def _on_rollout_start(self) -> None:
        self.fit()  # the previous rollout's PPO update has just run; nothing yet before the first rollout

    def _on_training_end(self) -> None:
        self.fit()

    def fit(self) -> float | None:
        """Fit a draw from the remembered steps; returns the mean loss (None if there are none, or no weight)."""
        if not self.labels:
            return None
        weight = self.weight()
        if weight <= 0:
            return None
        policy = self.model.policy
        draw = self.rng.permutation(len(self.labels))[: self.FIT_BATCHES * self.batch_size]  # random order too
        obs = np.stack([self.obs[i] for i in draw])
        labels = torch.as_tensor(np.array([self.labels[i] for i in draw]), device=policy.device)
        optimizer, parameters = self.optimizer(), self.parameters()
        losses = []
        policy.set_training_mode(True)
        for start in range(0, len(draw), self.batch_size):
            batch = slice(start, start + self.batch_size)
            obs_tensor, _ = policy.obs_to_tensor(obs[batch])
            loss = weight * self.loss(obs_tensor, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, self.model.max_grad_norm)
            optimizer.step()
            losses.append(loss.item())
        policy.set_training_mode(False)
        mean_loss = float(np.mean(losses))
        self.logger.record(self.LOSS_KEY, mean_loss)
        self.logger.record(self.SEEN_KEY, self.collected)
        return mean_loss
