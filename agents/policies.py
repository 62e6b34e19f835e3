"""Policies for evaluation: the trained agent and the baselines.

A policy is called once per decision with the observation and returns an action.
``reset(env, seed)`` runs after each ``env.reset`` (the IDM baseline takes over the
ego there); ``describe(obs)`` may return a short text for the video HUD.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.shield import shielded_choice
from envs.drivers import DriverParams, OvertakingDriver
from envs.guard import GuardedDriver, GuardParams
from envs.planner import LookaheadPlanner, PlannerParams
from envs.scene import hand_ego_to_idm

# highway-env's DiscreteMetaAction indices.
ACTION_NAMES = {0: "LANE_LEFT", 1: "IDLE", 2: "LANE_RIGHT", 3: "FASTER", 4: "SLOWER"}
BASELINES = ("random", "idle", "slower", "faster", "idm", "rules", "guarded", "lookahead")


class Policy:
    """Base policy: override ``__call__``."""

    name = "policy"

    def reset(self, env: Any, seed: int) -> None:
        """Called after every ``env.reset(seed=seed)``."""

    def __call__(self, obs: Any) -> Any:
        raise NotImplementedError

    def describe(self, obs: Any) -> str | None:
        """Text for the video HUD (e.g. a perception head's prediction)."""
        return None


class RandomPolicy(Policy):
    """Uniform random actions, seeded per episode."""

    name = "random"

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions
        self.rng = np.random.default_rng(0)

    def reset(self, env: Any, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: Any) -> int:
        return int(self.rng.integers(self.n_actions))


class ConstantPolicy(Policy):
    """Always the same meta-action (IDLE, SLOWER or FASTER)."""

    def __init__(self, name: str, action: int) -> None:
        self.name = name
        self.action = action

    def __call__(self, obs: Any) -> int:
        return self.action


class IDMPolicy(Policy):
    """highway-env's IDM (longitudinal) + MOBIL (lane changes) driver model controls the ego.

    At reset the ego is replaced by an ``IDMVehicle`` in the same state, which ignores
    the meta-actions; the action returned here (IDLE) is only what gets reported.
    """

    name = "idm"

    def reset(self, env: Any, seed: int) -> None:
        hand_ego_to_idm(env)

    def __call__(self, obs: Any) -> int:
        return 1


class RulesPolicy(Policy):
    """A hand-written overtaking driver on full ground truth (:class:`envs.drivers.OvertakingDriver`)."""

    name = "rules"

    def __init__(self, driver: OvertakingDriver | None = None) -> None:
        self.driver = driver or OvertakingDriver()
        self.env: Any = None

    def reset(self, env: Any, seed: int) -> None:
        self.env = env.unwrapped

    def __call__(self, obs: Any) -> int:
        return self.driver.act(self.env)


class GuardedPolicy(Policy):
    """The rules, vetoed where their action's bare replay crashes (:class:`envs.guard.GuardedDriver`).

    Like ``lookahead`` it reads every car's future: a reference and a teacher, not a driver.
    """

    name = "guarded"

    def __init__(self, driver: GuardedDriver | None = None) -> None:
        self.driver = driver or GuardedDriver()
        self.env: Any = None

    def reset(self, env: Any, seed: int) -> None:
        self.env = env

    def __call__(self, obs: Any) -> int:
        return self.driver.act(self.env)


class LookaheadPolicy(Policy):
    """A planner with a perfect model of the simulator (:class:`envs.planner.LookaheadPlanner`).

    A ceiling for this traffic, not a driver: it reads every car's future, which no camera policy
    can, so it shows what speed the traffic allows, with and without the monitor.

    :param planner: the planner (default: horizon 10 decisions, an override costs 5 m/s)
    """

    name = "lookahead"

    def __init__(self, planner: LookaheadPlanner | None = None) -> None:
        self.planner = planner or LookaheadPlanner()
        self.env: Any = None

    def reset(self, env: Any, seed: int) -> None:
        self.env = env  # the whole wrapper stack: the monitor's overrides are part of the future

    def __call__(self, obs: Any) -> int:
        return self.planner.act(self.env)


class AgentPolicy(Policy):
    """A trained SB3 model, acting deterministically; with snapshots, on the action probabilities averaged
    over the model and its earlier snapshots (a snapshot ensemble); through its learned shield when it has one.

    :param model: the SB3 model
    :param classifier: optional (perception classifier, class names) whose prediction the HUD shows
    :param shield: optional learned shield (:mod:`agents.shield`); ``vetoed`` then says whether it replaced
        the first choice on the latest call
    :param snapshots: earlier checkpoints of the same run (SB3 models) that vote with ``model``
    """

    name = "agent"

    def __init__(
        self,
        model: Any,
        classifier: tuple[Any, list[str]] | None = None,
        shield: Any = None,
        snapshots: list[Any] | None = None,
    ) -> None:
        self.model = model
        self.classifier = classifier
        self.shield = shield
        self.snapshots = list(snapshots or [])
        self.vetoed = False
        self._seen: tuple[np.ndarray, Any] | None = None  # (obs, backbone output) of the last action
        self._last_obs: np.ndarray | None = None
        if classifier is not None and _same_backbone(model, classifier[0]):
            # A frozen backbone is the classifier's own: reuse the policy's pass for the HUD.
            model.policy.features_extractor.backbone.register_forward_hook(self._keep_features)

    def _keep_features(self, module: Any, inputs: Any, output: Any) -> None:
        if output.shape[0] == 1:
            self._seen = (self._last_obs, output.detach())

    def __call__(self, obs: Any) -> Any:
        self._last_obs = np.asarray(obs)
        if self.shield is not None or self.snapshots:
            preference = self.action_probabilities(self._last_obs)
            if self.shield is None:
                return int(np.argmax(preference))
            action, self.vetoed = shielded_choice(
                preference, self.shield.risks(self.model.policy, self._last_obs), self.shield.threshold
            )
            return action
        action, _ = self.model.predict(obs, deterministic=True)
        return int(action) if np.ndim(action) == 0 else action

    def action_probabilities(self, obs: np.ndarray) -> np.ndarray:
        """The meta-actions' probabilities for one observation, averaged over the model and its snapshots."""
        import torch

        with torch.no_grad():
            probs = []
            for model in (self.model, *self.snapshots):
                tensor, _ = model.policy.obs_to_tensor(obs)
                probs.append(model.policy.get_distribution(tensor).distribution.probs[0].cpu().numpy())
        return np.mean(probs, axis=0)

    def describe(self, obs: Any) -> str | None:
        if self.classifier is None or obs is None:
            return None
        import torch

        net, names = self.classifier
        with torch.no_grad():
            if self._seen is not None and np.array_equal(self._seen[0], np.asarray(obs)):
                logits = net.head(self._seen[1])
            else:
                logits = net(torch.as_tensor(np.asarray(obs)[None]))
            probs = torch.softmax(logits, dim=1)[0]
        best = int(probs.argmax())
        return f"{names[best]} ({probs[best]:.0%})"


def _same_backbone(model: Any, classifier: Any) -> bool:
    """Whether the policy's CNN backbone holds exactly the classifier's weights (frozen pretrained)."""
    import torch

    backbone = getattr(getattr(model.policy, "features_extractor", None), "backbone", None)
    if backbone is None or not hasattr(classifier, "backbone"):
        return False
    mine, theirs = backbone.state_dict(), classifier.backbone.state_dict()
    return mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k].to(mine[k].device)) for k in mine)


def make_baseline(
    name: str,
    n_actions: int = 5,
    driver: DriverParams | None = None,
    planner: PlannerParams | None = None,
    guard: GuardParams | None = None,
) -> Policy:
    """A baseline policy by name (see :data:`BASELINES`); ``driver`` is the style of ``rules`` (and of
    ``guarded``'s and ``lookahead``'s rollouts), ``planner`` the horizon, override cost and reach of
    ``lookahead``, ``guard`` the horizon and reach of ``guarded``."""
    if name == "random":
        return RandomPolicy(n_actions)
    if name == "idm":
        return IDMPolicy()
    if name == "rules":
        return RulesPolicy(OvertakingDriver(driver))
    if name == "guarded":
        return GuardedPolicy(GuardedDriver(OvertakingDriver(driver), guard))
    if name == "lookahead":
        return LookaheadPolicy(LookaheadPlanner.from_params(planner or PlannerParams(), OvertakingDriver(driver)))
    constant = {"idle": 1, "faster": 3, "slower": 4}
    if name in constant:
        return ConstantPolicy(name, constant[name])
    raise ValueError(f"policy: unknown policy {name!r} (choose from: agent, {', '.join(BASELINES)})")
