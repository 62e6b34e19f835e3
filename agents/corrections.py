"""Learning from the safety monitor's corrections, as a PPO callback.

The ``override`` reward term tells PPO that a step the monitor had to correct was bad, but not
which action would have been right, and the penalty also lands when the policy already chose the
mitigation (a SLOWER the emergency brake still had to reinforce). The monitor knows the answer:
on a step where it replaced the proposed meta-action, the action it executed instead; on a step
where its emergency brake fired behind an action other than SLOWER, SLOWER. Those labels are
what an unmonitored policy would need in the very states where it crashes, so they are kept with
their observations and, after every PPO update, the policy is fitted to them (cross-entropy),
which follows the idea of learning from a supervisor's takeovers (Li et al., "Efficient Learning
of Safe Driving Policy via Human-AI Copilot Optimization", ICLR 2022).

Measured on the default pipeline (README, sessions 7-8): the labels are one-sided (all on the side
of caution), so at weight 1.0 and 0.1 alike the policy learned to crawl (20.6-21.1 m/s, 0-1 % crashes
without the monitor), and it still did on a backbone pretrained to read when to brake (21.2 m/s).
Hence off by default.

``two_sided`` also keeps the steps the monitor accepted, labelled with the policy's own action: the
fit then distills the monitored policy (what the monitor stood behind, on every step) into the bare
one, and a correction weighs in proportion to how often its kind of state is corrected, rather than
being all the fit sees.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from envs.safety_monitor import SLOWER


def correction_label(safety: dict[str, Any] | None) -> int | None:
    """The meta-action the monitor stood behind on this step, or None when it had nothing to correct.

    :param safety: a step's ``info["safety"]`` (None for an env without the monitor)
    """
    if not safety or not safety["overridden"]:
        return None
    proposed, executed = int(safety["proposed_action"]), int(safety["executed_action"])
    if executed != proposed:
        return executed
    if safety["emergency_braking"] and proposed != SLOWER:
        return SLOWER
    return None  # aborts and swerves correct an earlier decision, not this one


def monitored_label(safety: dict[str, Any] | None) -> int | None:
    """What the monitor stood behind on this step, corrected or not (the two-sided label).

    :func:`correction_label` on corrected steps; the policy's own action on steps the monitor
    accepted, or on which its emergency brake backed a SLOWER; None without a monitor, and on aborts
    and swerves (they correct an earlier decision).
    """
    label = correction_label(safety)
    if label is not None or not safety:
        return label
    proposed = int(safety["proposed_action"])
    if not safety["overridden"] or (safety["emergency_braking"] and proposed == SLOWER):
        return proposed
    return None


class CorrectionLearning(BaseCallback):
    """Fit the policy to the monitor's corrections after every PPO update (see the module docstring).

    Collects (observation, :func:`correction_label`) pairs during rollouts (:func:`monitored_label`
    with ``two_sided``), keeps the latest ``memory`` of them, and after each update (and once at the
    end of training) takes up to ``FIT_BATCHES`` minibatch gradient steps on ``coef`` times their
    cross-entropy, with PPO's own optimizer, on a random draw from that memory.
    The rollout itself is untouched: PPO's data stays on-policy.

    :param coef: weight of the cross-entropy (> 0)
    :param memory: how many of the latest labelled steps are kept
    :param batch_size: minibatch size of those steps
    :param seed: seeds the draws
    :param two_sided: label the accepted steps too (see the module docstring)
    """

    FIT_BATCHES = 8
    """Minibatches per fit: bounds its cost when the memory is large (two-sided)."""

    def __init__(
        self, coef: float, memory: int = 1024, batch_size: int = 128, seed: int = 0, two_sided: bool = False
    ) -> None:
        if coef <= 0:
            raise ValueError(f"coef: must be > 0, got {coef}")
        if memory < 1 or batch_size < 1:
            raise ValueError(f"memory and batch_size must be >= 1, got {memory}, {batch_size}")
        super().__init__()
        self.coef, self.batch_size = coef, batch_size
        self.obs: deque[np.ndarray] = deque(maxlen=memory)
        self.labels: deque[int] = deque(maxlen=memory)
        self.collected = 0
        self.label = monitored_label if two_sided else correction_label
        self.rng = np.random.default_rng(seed)

    def _on_step(self) -> bool:
        # The buffer is not written yet when callbacks run: the observation acted on is still _last_obs.
        last_obs = self.model._last_obs
        for i, info in enumerate(self.locals["infos"]):
            label = self.label(info.get("safety"))
            if label is not None:
                self.obs.append(np.array(last_obs[i]))
                self.labels.append(label)
                self.collected += 1
        return True

    def _on_rollout_start(self) -> None:
        self.fit()  # the previous rollout's PPO update has just run; nothing yet before the first rollout

    def _on_training_end(self) -> None:
        self.fit()

    def fit(self) -> float | None:
        """Fit a draw from the remembered steps; returns the mean loss (None if there are none)."""
        if not self.labels:
            return None
        policy = self.model.policy
        draw = self.rng.permutation(len(self.labels))[: self.FIT_BATCHES * self.batch_size]  # random order too
        obs = np.stack([self.obs[i] for i in draw])
        labels = torch.as_tensor(np.array([self.labels[i] for i in draw]), device=policy.device)
        losses = []
        policy.set_training_mode(True)
        for start in range(0, len(draw), self.batch_size):
            batch = slice(start, start + self.batch_size)
            obs_tensor, _ = policy.obs_to_tensor(obs[batch])
            logits = policy.get_distribution(obs_tensor).distribution.logits
            loss = self.coef * nn.functional.cross_entropy(logits, labels[batch])
            policy.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), self.model.max_grad_norm)
            policy.optimizer.step()
            losses.append(loss.item())
        policy.set_training_mode(False)
        mean_loss = float(np.mean(losses))
        self.logger.record("train/correction_loss", mean_loss)
        self.logger.record("train/corrections_seen", self.collected)
        return mean_loss
