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

from collections.abc import Iterator
from typing import Any

import numpy as np

from agents.label_fit import LabelFitting
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


class CorrectionLearning(LabelFitting):
    """Fit the policy to the monitor's corrections after every PPO update (see the module docstring).

    Labels the steps :func:`correction_label` labels (:func:`monitored_label` with ``two_sided``),
    with the observation the policy acted on; the fit is :class:`LabelFitting`'s.

    :param coef: weight of the cross-entropy (> 0)
    :param memory: how many of the latest labelled steps are kept
    :param batch_size: minibatch size of those steps
    :param seed: seeds the draws
    :param two_sided: label the accepted steps too (see the module docstring)
    """

    LOSS_KEY, SEEN_KEY = "train/correction_loss", "train/corrections_seen"

    def __init__(
        self, coef: float, memory: int = 1024, batch_size: int = 128, seed: int = 0, two_sided: bool = False
    ) -> None:
        super().__init__(coef, memory, batch_size, seed)
        self.label = monitored_label if two_sided else correction_label

    def labelled(self) -> Iterator[tuple[np.ndarray, int]]:
        # The buffer is not written yet when callbacks run: the observation acted on is still _last_obs.
        last_obs = self.model._last_obs
        for i, info in enumerate(self.locals["infos"]):
            label = self.label(info.get("safety"))
            if label is not None:
                yield last_obs[i], label
