"""Distilling the imitation teacher into the policy during PPO ("kickstarting").

The warm start clones the teacher once (and one DAgger round); PPO then drifts from it wherever the
reward prefers something else, and nothing tells the policy what the teacher would have done in the
states PPO now visits. Here the teacher keeps labelling those states (the ``ExpertAdvice`` wrapper stays
on during PPO) and after every update the policy is fitted to its labels: DAgger continued through RL,
as in "Kickstarting Deep Reinforcement Learning" (Schmitt et al., 2018), where a distillation loss
toward a teacher on the student's own trajectories is added to the RL loss. The teacher drives well
without the monitor (the rules: 3 % crashes), so its labels are balanced: it brakes where the bare
policy crashes, and speeds up where that is safe, unlike the monitor's one-sided corrections.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from agents.label_fit import LabelFitting


class TeacherDistillation(LabelFitting):
    """Fit the policy to the teacher's advice (``info["expert_action"]``) on the states the policy reaches.

    A step's advice is for the state it reached (:meth:`LabelFitting.reached`). Steps without advice (an env that
    advises only a share of its steps, or none) are skipped. The fit is :class:`LabelFitting`'s.

    :param coef: weight of the cross-entropy (> 0), at the start
    :param memory: how many of the latest labelled steps are kept
    :param batch_size: minibatch size of those steps
    :param seed: seeds the draws
    :param anneal_until: if set, the weight falls linearly from ``coef`` at step 0 to 0 at this many
        env steps (the model's ``num_timesteps``), so PPO's own objective has the last word, as in
        kickstarting; None: constant
    """

    LOSS_KEY, SEEN_KEY = "train/distill_loss", "train/distill_labels_seen"

    def __init__(
        self, coef: float, memory: int = 4096, batch_size: int = 128, seed: int = 0, anneal_until: int | None = None
    ) -> None:
        if anneal_until is not None and anneal_until < 1:
            raise ValueError(f"anneal_until: must be >= 1 or None, got {anneal_until}")
        super().__init__(coef, memory, batch_size, seed)
        self.anneal_until = anneal_until

    def weight(self) -> float:
        if self.anneal_until is None:
            return self.coef
        weight = self.coef * max(0.0, 1.0 - self.model.num_timesteps / self.anneal_until)
        self.logger.record("train/distill_weight", weight)
        return weight

    def labelled(self) -> Iterator[tuple[np.ndarray, int]]:
        for obs, info in self.reached():
            if "expert_action" in info:
                yield obs, int(info["expert_action"])
