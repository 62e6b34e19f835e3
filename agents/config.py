"""Schemas of the ``agent`` and ``run`` groups, the whole training config, and its loading.

Configs are YAML groups under ``configs/``, composed with Hydra's override grammar
(``group=option`` swaps a group, ``a.b=value`` sets a key), then checked against
the dataclasses below. Every failure becomes a :class:`ConfigError` with one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agents.schema import ConfigError, explain_unknown_key, from_dict, to_dict
from envs.action_risks import CONTINUATIONS
from envs.config import EnvConfig, FaultsConfig, RewardConfig, SafetyConfig
from envs.drivers import DriverParams
from envs.guard import GuardParams
from envs.planner import PlannerParams
from perception.config import PerceptionConfig

GROUPS = (
    "env",
    "reward",
    "safety",
    "faults",
    "agent",
    "perception",
    "imitation",
    "driver",
    "shield",
    "run",
    "eval",
)
RUN_GROUPS_IN_EVAL = {"env": EnvConfig, "reward": RewardConfig}
"""Groups an evaluation inherits from the run it loads, with their schemas; the monitor and faults are the
evaluation's own."""


EXPERTS = ("rules", "guarded", "lookahead")
"""Who can teach the warm start (``imitation.expert``) and label during PPO (``agent.distill_expert``)."""


@dataclass
class AgentConfig:
    """PPO (stable-baselines3) hyperparameters and the policy network."""

    policy: Literal["cnn", "mlp"] = "cnn"
    """``cnn`` on camera frames, ``mlp`` on kinematics."""
    total_timesteps: int = 80_000
    """Environment steps to train for, summed over all envs."""
    n_envs: int | None = None
    """Parallel envs (subprocesses when > 1); null = number of CPUs."""
    unmonitored_envs: int = 0
    """How many of the training envs run without the safety monitor (``safety=rss`` runs only):
    there the policy meets the crashes the monitor would have prevented, and pays for them."""
    shadow_envs: int | Literal["all"] = 0
    """How many of the monitored training envs run the monitor in shadow mode (``safety.shadow``): it
    changes nothing, so the policy meets the crashes the monitor would have prevented there, and is
    charged the override price wherever the monitor would have stepped in, as in the monitored envs.
    ``all`` = every monitored env, whatever ``n_envs`` resolves to on the machine (none with ``safety=off``)."""
    correction_coef: float = 0.0
    """Weight of a cross-entropy, fitted after every PPO update, that pulls the policy toward the
    action the safety monitor stood behind on the steps it corrected (:mod:`agents.corrections`); 0 = off."""
    correction_memory: int = 1024
    """How many of the latest labelled steps are kept for that cross-entropy (up to 8 minibatches are
    drawn from them after each update): the corrected ones, or with ``correction_two_sided`` every
    monitored step."""
    correction_two_sided: bool = False
    """Also fit the steps the monitor accepted, to the policy's own action there, so that corrections
    weigh in proportion to how often they happen (only with ``correction_coef`` > 0)."""
    distill_coef: float = 0.0
    """Weight of a cross-entropy, fitted after every PPO update, that pulls the policy toward what the
    teacher (``distill_expert`` over ``driver``, by default the imitation teacher) would do in the states the
    policy reached during PPO (:mod:`agents.distillation`, "kickstarting"); 0 = off."""
    distill_anneal: bool = False
    """Let ``distill_coef`` fall linearly to 0 at ``total_timesteps``, so that PPO's own objective has the
    last word once the teacher's pace is learned (kickstarting's schedule)."""
    distill_memory: int = 4096
    """How many of the latest teacher-labelled steps are kept for that cross-entropy."""
    distill_rate: float = 1.0
    """Share of PPO's steps the teacher labels, in (0, 1]: bounds a planning teacher's cost
    (~0.15 s per label for ``imitation.expert=lookahead`` at horizon 3 within 150 m, ~0.1 ms for the rules)."""
    distill_expert: Literal["rules", "guarded", "lookahead"] | None = None
    """Who labels during PPO: None = the warm start's teacher (``imitation.expert``); ``rules`` or
    ``lookahead`` (with the ``imitation.lookahead_*`` settings) to warm-start from the cheap rules and
    distill a planner, whose labels cost too much to clone from."""
    aux_coef: float = 0.0
    """Weight of an auxiliary regression, during the warm start and after every PPO update, of the scene's
    ground-truth gaps and closing speeds around the ego, and its speed (:mod:`envs.facts`), from the
    policy's features (:mod:`agents.auxiliary`): it trains the features extractor (its last layer only
    when ``perception.freeze``) to carry what braking depends on; 0 = off. ``agent.policy=cnn`` only."""
    aux_memory: int = 4096
    """How many of the latest PPO steps (frames and facts) are kept for that regression."""
    learning_rate: float = 5e-4
    """Adam step size at the start of PPO."""
    learning_rate_final: float | None = None
    """Adam step size at ``total_timesteps``, reached linearly from ``learning_rate`` (PPO's optimizer and the
    auxiliary regression's alike); null = constant. On ``resume`` it goes on from the saved step count, toward the
    resumed ``total_timesteps``."""
    n_steps: int = 256
    """Steps per env per rollout."""
    batch_size: int = 128
    """Minibatch size for each gradient step."""
    n_epochs: int = 5
    """Passes over each rollout."""
    gamma: float = 0.8
    """Discount factor (highway-env's recipe uses a short horizon)."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """PPO ratio clip."""
    ent_coef: float = 0.01
    """Entropy bonus weight."""
    vf_coef: float = 0.5
    """Value loss weight."""
    max_grad_norm: float = 0.5
    """Gradient clipping norm."""
    ensemble: int = 1
    """Members of the deployed policy: the final model and the checkpoints ``run.checkpoint_every`` steps apart
    before it (copied to ``<run>/snapshots/``), whose action probabilities are averaged (a snapshot ensemble);
    1 = the final model alone."""
    features_dim: int = 256
    """Width of the features extractor's output."""
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layers of the policy and value heads."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Torch device for the networks."""
    train_densities: list[float] = field(default_factory=list)
    """Traffic density multipliers (``vehicles_density``, highway envs only) of the training envs alone: the warm
    start, PPO and the shield's collection. Env i trains at item i mod the list's length, so ``[1.25]`` trains
    every env on denser traffic and ``[1.0, 1.5]`` mixes two densities. The evaluation env (the ``env`` group,
    saved with the run) keeps ``env.vehicles_density``. [] = the training envs use it too."""

    def __post_init__(self) -> None:
        positive = (
            "total_timesteps",
            "n_steps",
            "batch_size",
            "n_epochs",
            "features_dim",
            "correction_memory",
            "distill_memory",
            "aux_memory",
            "ensemble",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.n_envs is not None and self.n_envs < 1:
            raise ValueError(f"n_envs: must be >= 1 or null, got {self.n_envs}")
        if not 0 <= self.unmonitored_envs <= self.resolved_n_envs():
            raise ValueError(
                f"unmonitored_envs: must be in 0..n_envs ({self.resolved_n_envs()}), got {self.unmonitored_envs}"
            )
        monitored = self.resolved_n_envs() - self.unmonitored_envs
        if self.shadow_envs != "all" and not 0 <= self.shadow_envs <= monitored:
            raise ValueError(
                f"shadow_envs: must be all or in 0..n_envs - unmonitored_envs ({monitored}), got {self.shadow_envs}"
            )
        if self.correction_coef < 0:
            raise ValueError(f"correction_coef: must be >= 0, got {self.correction_coef}")
        if self.correction_two_sided and self.correction_coef == 0:
            raise ValueError("correction_two_sided: needs correction_coef > 0")
        if self.distill_coef < 0:
            raise ValueError(f"distill_coef: must be >= 0, got {self.distill_coef}")
        if self.distill_anneal and self.distill_coef == 0:
            raise ValueError("distill_anneal: needs distill_coef > 0")
        if not 0 < self.distill_rate <= 1:
            raise ValueError(f"distill_rate: must be in (0, 1], got {self.distill_rate}")
        if self.distill_expert not in (None, *EXPERTS):
            raise ValueError(f"distill_expert: must be {', '.join(EXPERTS)} or null, got {self.distill_expert!r}")
        if self.aux_coef < 0:
            raise ValueError(f"aux_coef: must be >= 0, got {self.aux_coef}")
        if self.aux_coef > 0 and self.policy != "cnn":
            raise ValueError("aux_coef: needs agent.policy=cnn (it shapes the CNN's features)")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate: must be in (0, 1), got {self.learning_rate}")
        if self.learning_rate_final is not None and not 0 <= self.learning_rate_final <= self.learning_rate:
            raise ValueError(
                f"learning_rate_final: must be null or in [0, learning_rate ({self.learning_rate})], "
                f"got {self.learning_rate_final}"
            )
        for name in ("gamma", "gae_lambda"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name}: must be in (0, 1], got {getattr(self, name)}")
        if any(density <= 0 for density in self.train_densities):
            raise ValueError(f"train_densities: every density must be > 0, got {self.train_densities}")

    def resolved_n_envs(self) -> int:
        return self.n_envs or os.cpu_count() or 1

    def resolved_shadow_envs(self, monitor: bool) -> int:
        """How many training envs run a shadow monitor, with ``all`` counted on this machine.

        :param monitor: whether the run has a safety monitor at all; without one, ``all`` is none
        """
        if self.shadow_envs == "all":
            return self.resolved_n_envs() - self.unmonitored_envs if monitor else 0
        return self.shadow_envs


@dataclass
class ImitationConfig:
    """Warm start before PPO: clone the rule-based driver (:mod:`envs.drivers`) from camera frames.

    The expert reads the simulator's ground truth, the student only the frames (a privileged
    teacher). First the expert drives and is recorded; then, optionally, the cloned student
    drives while the expert labels what it should have done (one DAgger round), so the student
    also learns to recover from its own mistakes. The value head is fitted to the discounted
    returns seen meanwhile, so PPO starts with a critic that matches its actor.
    """

    steps: int = 0
    """Env steps (all envs together) driven and recorded by the expert; 0 = no warm start."""
    dagger_steps: int = 0
    """Env steps then driven by the cloned student and labelled by the expert (0 = skip)."""
    epochs: int = 8
    """Passes over all recorded data after each round."""
    batch_size: int = 256
    """Minibatch size."""
    learning_rate: float = 1e-3
    """Adam step size for cloning."""
    value_weight: float = 0.5
    """Weight of the value head's regression onto discounted returns."""
    holdout: float = 0.1
    """Fraction of the recorded steps kept aside to measure agreement with the expert."""
    expert: Literal["rules", "guarded", "lookahead"] = "rules"
    """Who teaches: ``rules``, the overtaking driver (``driver`` config); ``guarded``, the rules vetoed where
    their action, replayed ``guard_horizon`` decisions ahead without the monitor, crashes (:mod:`envs.guard`;
    ~0.04 s per label); or ``lookahead``, a planner that tries each action on a copy of the simulator with the
    rules driving the rollouts (:mod:`envs.planner`): faster, and ~0.15 s per label at horizon 3
    (``lookahead_reach`` 150 m) instead of ~0.1 ms."""
    guard_horizon: int = 10
    """Decisions the ``guarded`` expert replays (its action, then the rules), the first included."""
    lookahead_horizon: int = 3
    """Decisions the ``lookahead`` expert simulates per candidate action (the first included)."""
    lookahead_reach: float | None = 150.0
    """The ``lookahead`` and ``guarded`` experts simulate only the vehicles within this many metres of the ego, ahead or
    behind (null: all 20, spread over ~500 m): 2.4x faster at 150 m, same choice on 89 of 90 states."""
    lookahead_override_cost: float = 5.0
    """What a monitor override costs the ``lookahead`` expert's rollouts [m/s of summed speed]. Higher
    makes a teacher that leaves less to the monitor: at 15 the planner overrode on 1.6 % of steps, at 5 on
    4.1 %, and only at 5 did its choices crash without the monitor (README, Rule-based driver and imitation)."""

    def __post_init__(self) -> None:
        if self.expert not in EXPERTS:
            raise ValueError(f"expert: must be one of {', '.join(EXPERTS)}, got {self.expert!r}")
        if self.guard_horizon < 1:
            raise ValueError(f"guard_horizon: must be >= 1, got {self.guard_horizon}")
        if self.lookahead_horizon < 1:
            raise ValueError(f"lookahead_horizon: must be >= 1, got {self.lookahead_horizon}")
        if self.lookahead_reach is not None and self.lookahead_reach <= 0:
            raise ValueError(f"lookahead_reach: must be > 0 or null, got {self.lookahead_reach}")
        if self.lookahead_override_cost < 0:
            raise ValueError(f"lookahead_override_cost: must be >= 0, got {self.lookahead_override_cost}")
        for name in ("steps", "dagger_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.dagger_steps and not self.steps:
            raise ValueError("dagger_steps: needs steps > 0 (the student must first be cloned)")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate: must be in (0, 1), got {self.learning_rate}")
        if self.value_weight < 0:
            raise ValueError(f"value_weight: must be >= 0, got {self.value_weight}")
        if not 0 <= self.holdout < 0.5:
            raise ValueError(f"holdout: must be in [0, 0.5), got {self.holdout}")

    @property
    def enabled(self) -> bool:
        return self.steps > 0

    def planner(self, expert: str | None = None) -> PlannerParams | GuardParams | None:
        """The ``lookahead`` or ``guarded`` expert's settings; None when the rules teach.

        :param expert: who teaches (None: ``expert``), e.g. ``agent.distill_expert`` during PPO
        """
        expert = expert or self.expert
        if expert == "guarded":
            return GuardParams(self.guard_horizon, self.lookahead_reach)
        if expert == "lookahead":
            return PlannerParams(self.lookahead_horizon, self.lookahead_override_cost, self.lookahead_reach)
        return None


@dataclass
class ShieldConfig:
    """After PPO: fit a learned shield that vetoes, from the policy's own features, the meta-actions its
    frames say are unsafe (:mod:`agents.shield`, :mod:`agents.shield_fit`). It is part of the saved policy
    (``shield.pt``), with and without the monitor."""

    steps: int = 0
    """States the trained policy reaches and that are labelled for the fit (all envs together); 0 = no shield."""
    collect: Literal["monitored", "bare"] = "monitored"
    """Where the policy drives while those states are collected: ``monitored``, with the run's monitor stepping
    in, as when deployed with it; ``bare``, with the monitor in shadow mode (it changes nothing), so the states
    include the close calls the bare policy drives into and the monitor would have kept it out of: the states
    where a shield deployed without the monitor has to act. The labels are the same either way."""
    reads: Literal["features", "frames"] = "features"
    """What the shield reads: ``features``, a small head on the policy's frozen features (cheap to fit, but it
    shares what the policy cannot see); ``frames``, a CNN of its own, started from a copy of the policy's backbone
    and trained whole on the labels (``agent.policy=cnn``; a CNN pass per decision; fit it with ~10 ``epochs``)."""
    source: Literal["monitor", "replay", "both"] = "monitor"
    """What labels an action unsafe (:mod:`envs.action_risks`): ``monitor``, the monitor's decision check
    (~0.1 ms a state); ``replay``, a crash within ``horizon`` decisions of that action then SLOWER on a copy
    of the simulator without the monitor (~0.1 s a state); ``both``, either."""
    horizon: int = 3
    """Decisions of the ``replay`` labels, the labelled one included."""
    continuation: Literal["slower", "rules"] = "slower"
    """Who drives a ``replay`` label's copy after the labelled action: ``slower``, SLOWER on every decision
    (was the action itself a mistake?); ``rules``, the rule-based driver (``driver`` config), which changes
    lanes where a gap opens (does the action lead into a trap with no way out, over ~8 decisions?)."""
    threshold: float = 0.5
    """The shield vetoes an action whose predicted probability of being unsafe exceeds this."""
    hidden: int = 128
    """Width of the shield head's hidden layer."""
    epochs: int = 200
    """Passes over the labelled states."""
    batch_size: int = 256
    """Minibatch size of the fit."""
    learning_rate: float = 1e-3
    """Adam step size of the fit."""
    holdout: float = 0.2
    """Share of the labelled states kept out of the fit to measure the head (precision and recall)."""

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps: must be >= 0, got {self.steps}")
        if self.source not in ("monitor", "replay", "both"):
            raise ValueError(f"source: must be monitor, replay or both, got {self.source!r}")
        if self.continuation not in CONTINUATIONS:
            raise ValueError(f"continuation: must be slower or rules, got {self.continuation!r}")
        if self.reads not in ("features", "frames"):
            raise ValueError(f"reads: must be features or frames, got {self.reads!r}")
        if self.collect not in ("monitored", "bare"):
            raise ValueError(f"collect: must be monitored or bare, got {self.collect!r}")
        for name in ("horizon", "hidden", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold: must be in (0, 1), got {self.threshold}")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate: must be in (0, 1), got {self.learning_rate}")
        if not 0 <= self.holdout < 0.5:
            raise ValueError(f"holdout: must be in [0, 0.5), got {self.holdout}")

    @property
    def enabled(self) -> bool:
        return self.steps > 0


@dataclass
class RunConfig:
    """Where outputs go, seeds, checkpoints and the final evaluation."""

    name: str | None = None
    """Run name; outputs go to ``<dir>/<name>/``. null = a timestamp."""
    dir: str = "runs"
    """Parent directory of all runs."""
    seed: int = 0
    """Training seed; env i is seeded with seed + i. Must stay below the evaluation seeds."""
    checkpoint_every: int = 10_000
    """Save a checkpoint every this many environment steps."""
    progress_bar: bool = True
    """Show a progress bar with steps/s."""

    def __post_init__(self) -> None:
        if self.name is not None and (not self.name or "/" in self.name or self.name in (".", "..")):
            raise ValueError(f"name: must be a plain directory name, got {self.name!r}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every: must be >= 1, got {self.checkpoint_every}")
        from agents.evaluation import EVAL_SEED_BASE

        if not 0 <= self.seed < EVAL_SEED_BASE - 10_000:
            raise ValueError(f"seed: must be in [0, {EVAL_SEED_BASE - 10_000}) (evaluation seeds are held out)")


@dataclass
class EvalSettings:
    """The evaluation at the end of training."""

    episodes: int = 10
    """Deterministic episodes on held-out seeds (0 = skip)."""
    video: int = 0
    """Record this many of them to MP4 under ``<run>/eval/videos/``."""

    def __post_init__(self) -> None:
        if self.episodes < 0 or self.video < 0:
            raise ValueError(f"episodes: must be >= 0, got {self.episodes} episodes, {self.video} videos")
        if self.video > self.episodes:
            raise ValueError(f"video: cannot exceed episodes ({self.episodes}), got {self.video}")


@dataclass
class TrainConfig:
    """Everything ``scripts/train_agent.py`` needs; one key per config group."""

    env: EnvConfig = field(default_factory=EnvConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    safety: SafetyConfig = field(default_factory=lambda: SafetyConfig(enabled=False))
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)
    imitation: ImitationConfig = field(default_factory=ImitationConfig)
    driver: DriverParams = field(default_factory=DriverParams)
    """The rule-based driver that ``imitation`` clones."""
    shield: ShieldConfig = field(default_factory=ShieldConfig)
    run: RunConfig = field(default_factory=RunConfig)
    eval: EvalSettings = field(default_factory=EvalSettings)
    resume: bool = False
    """Continue ``run.name`` from its last checkpoint, with its saved config."""

    def __post_init__(self) -> None:
        wanted = "cnn" if self.env.observation == "camera" else "mlp"
        if self.agent.policy != wanted:
            raise ValueError(
                f"agent.policy: {self.agent.policy!r} does not fit env.observation="
                f"{self.env.observation!r} (use agent=ppo_{wanted})"
            )
        if abs(self.reward.shaping_gamma - self.agent.gamma) > 1e-9 and self.reward.headway != 0:
            raise ValueError(
                f"reward.shaping_gamma: must equal agent.gamma ({self.agent.gamma}) for the potential-based "
                f"headway term to leave the optimal policy unchanged, got {self.reward.shaping_gamma}"
            )
        if self.shield.enabled and self.shield.reads == "frames" and self.agent.policy != "cnn":
            raise ValueError("shield.reads: frames needs camera frames and a CNN to copy (agent=ppo_cnn)")
        if self.agent.shadow_envs not in (0, "all") and not self.safety.enabled:  # all = none without a monitor
            raise ValueError("agent.shadow_envs: a shadow monitor needs the monitor (safety=rss, rss_exact, rss_paper)")
        self.faults.check_env(self.env)
        if self.agent.train_densities and not self.env.id.startswith("highway"):
            raise ValueError(f"agent.train_densities: traffic density applies to highway envs only, not {self.env.id}")
        if len(self.agent.train_densities) > self.agent.resolved_n_envs():
            raise ValueError(
                f"agent.train_densities: {len(self.agent.train_densities)} densities for "
                f"{self.agent.resolved_n_envs()} training envs (agent.n_envs): some would never be trained on"
            )
        if self.perception.checkpoint is not None and self.agent.policy != "cnn":
            raise ValueError("perception.checkpoint: a pretrained CNN needs camera frames (agent=ppo_cnn)")

    def saved(self) -> dict[str, Any]:
        """The resolved config as saved to ``config.yaml``: the groups only."""
        return {name: to_dict(getattr(self, name)) for name in GROUPS}


def compose(config_dir: str | Path, config_name: str, overrides: list[str]) -> dict[str, Any]:
    """Compose ``config_name`` from ``config_dir`` with Hydra overrides, as plain data.

    :raises ConfigError: for unknown groups/options, parse errors and missing files
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    config_dir = Path(config_dir).resolve()
    if not (config_dir / f"{config_name}.yaml").is_file():
        raise ConfigError(f"config file not found: {config_dir / (config_name + '.yaml')}")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=[_upsert(o) for o in overrides])
    except Exception as err:  # Hydra raises several types; all are user errors here
        raise ConfigError(_hydra_message(err, config_dir)) from None
    finally:
        GlobalHydra.instance().clear()
    OmegaConf.set_struct(cfg, False)
    cfg.pop("hydra", None)
    return OmegaConf.to_container(cfg, resolve=True)


def _upsert(override: str) -> str:
    """``group.key=value`` as ``++group.key=value``: sets the key even where the group's option leaves it out.

    Options list the keys they change, so a plain override of a schema key an option omits (``reward=cautious
    reward.override_spares_slower=true``) would be refused by Hydra; :func:`from_dict` still rejects unknown keys,
    naming the allowed ones. Group swaps (no dot) and explicit ``+``/``~`` overrides pass unchanged.
    """
    key = override.partition("=")[0]
    return f"++{override}" if "." in key and not key.startswith(("+", "~")) else override


def _hydra_message(err: Exception, config_dir: Path) -> str:
    """One line from Hydra's multi-line errors, with the allowed options."""
    text = str(err).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if "Could not find '" in text:
        # "In 'train': Could not find 'reward/foo'" + "Available options in 'reward': ..."
        missing = text.split("Could not find '", 1)[1].split("'", 1)[0]
        group, _, option = missing.rpartition("/")
        if group:
            options = sorted(p.stem for p in (config_dir / group).glob("*.yaml"))
            return f"{group}={option}: unknown option for group '{group}' (choose from: {', '.join(options)})"
        return f"config not found: {missing}"
    if "Could not override '" in text:
        key = text.split("Could not override '", 1)[1].split("'", 1)[0]
        return f"{key}: unknown key"
    return " ".join(lines[:2])


def load_train_config(config_dir: str | Path, overrides: list[str]) -> TrainConfig:
    """Compose, validate and (with ``resume=true``) reload a run's saved config.

    :param config_dir: the repo's ``configs/`` folder
    :param overrides: Hydra overrides, e.g. ``["reward=cautious", "agent.total_timesteps=5e4"]``
    :raises ConfigError: naming the key, option or path at fault
    """
    try:
        data = compose(config_dir, "train", overrides)
    except ConfigError as err:
        raise ConfigError(explain_unknown_key(TrainConfig, str(err))) from None
    cfg = from_dict(TrainConfig, data)
    if not cfg.resume:
        return cfg
    if cfg.run.name is None:
        raise ConfigError("resume: needs run.name=<the run to continue>")
    run_dir = Path(cfg.run.dir) / cfg.run.name
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"resume: no saved config at {run_dir / 'config.yaml'}")
    # On resume the saved config is the base; only key overrides apply, not group swaps.
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in ("resume",)]
    swaps = [o.split("=", 1)[0] for o in kept if o.split("=", 1)[0] in (*GROUPS, "preset")]
    if swaps:
        raise ConfigError(f"{swaps[0]}: cannot swap a config group when resuming (set keys instead)")
    try:
        saved = compose(run_dir, "config", kept)
    except ConfigError as err:
        raise ConfigError(explain_unknown_key(TrainConfig, str(err))) from None
    cfg = from_dict(TrainConfig, {**saved, "resume": True})
    return cfg


@dataclass
class EvalConfig:
    """What ``scripts/evaluate.py`` evaluates, where and how."""

    env: EnvConfig = field(default_factory=EnvConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    driver: DriverParams = field(default_factory=DriverParams)
    """The style of the ``rules`` baseline (and of the ``guarded`` and ``lookahead`` baselines' rollouts)."""
    planner: PlannerParams = field(default_factory=PlannerParams)
    """The ``lookahead`` baseline's horizon, override cost and reach."""
    guard: GuardParams = field(default_factory=GuardParams)
    """The ``guarded`` baseline's replay horizon and reach."""
    run: str | None = None
    """Training run dir with ``model.zip`` and ``config.yaml``."""
    policy: str = "agent"
    """``agent`` (the run's model) or a baseline name."""
    episodes: int = 100
    """Deterministic evaluation episodes."""
    seed: int = 0
    """Offset into the held-out seeds: episode i uses seed ``EVAL_SEED_BASE + seed + i``."""
    video: int = 0
    """Record the first ``video`` episodes to MP4."""
    out: str | None = None
    """Output dir; null = ``<run>/eval`` or ``eval/<policy>``."""
    suite: str | None = None
    """Run a scenario suite (``emergency``) instead of episodes on ``env``."""
    learned_shield: bool = True
    """Apply the run's learned shield (``shield.pt``) when it has one; false judges the policy without it."""
    snapshots: bool = True
    """Let the run's snapshots (``snapshots/*.zip``, ``agent.ensemble``) vote with its final model; false judges
    the final model alone."""

    def __post_init__(self) -> None:
        from agents.policies import BASELINES
        from agents.suite import SUITES

        if self.suite is not None and self.suite not in SUITES:
            raise ValueError(f"suite: unknown suite {self.suite!r} (choose from: {', '.join(SUITES)})")
        self.faults.check_env(self.env)

        if self.policy not in ("agent", *BASELINES):
            choices = ", ".join(("agent", *BASELINES))
            raise ValueError(f"policy: unknown policy {self.policy!r} (choose from: {choices}, or a run dir)")
        if self.policy == "agent" and self.run is None:
            raise ValueError("policy: 'agent' needs run=<run dir> (or choose a baseline with policy=...)")
        if self.episodes < 1:
            raise ValueError(f"episodes: must be >= 1, got {self.episodes}")
        if not 0 <= self.video <= self.episodes:
            raise ValueError(f"video: must be in 0..episodes ({self.episodes}), got {self.video}")
        if self.seed < 0:
            raise ValueError(f"seed: must be >= 0, got {self.seed}")

    def out_dir(self) -> Path:
        if self.out is not None:
            return Path(self.out).expanduser()
        if self.policy == "agent":
            return Path(str(self.run)) / "eval"
        return Path("eval") / self.policy


def _run_dir_from(overrides: list[str]) -> str | None:
    """The run dir named by ``run=DIR`` or ``policy=DIR`` on the command line."""
    from agents.policies import BASELINES

    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key == "run" and value not in ("", "null"):
            return value
        if sep and key == "policy" and value not in ("agent", *BASELINES):
            if Path(value).expanduser().is_dir():
                return value
    return None


def _with_run_defaults(config_dir: Path, config_name: str, run_dir: Path, tmp: Path) -> None:
    """Copy of ``config_dir`` in ``tmp`` whose defaults are the run's saved groups (option ``_run``)."""
    import yaml

    saved = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    for group in config_dir.iterdir():
        if group.is_dir():
            (tmp / group.name).mkdir()
            for option in group.glob("*.yaml"):
                (tmp / group.name / option.name).symlink_to(option)
            if group.name in RUN_GROUPS_IN_EVAL and isinstance(saved.get(group.name), dict):
                # A key added after the run was trained takes its default, as loading it does, and stays settable.
                defaults = to_dict(RUN_GROUPS_IN_EVAL[group.name]())
                (tmp / group.name / "_run.yaml").write_text(yaml.safe_dump({**defaults, **saved[group.name]}))
    entry = yaml.safe_load((config_dir / f"{config_name}.yaml").read_text())
    entry["defaults"] = [
        {next(iter(d)): "_run"} if isinstance(d, dict) and next(iter(d)) in RUN_GROUPS_IN_EVAL else d
        for d in entry["defaults"]
    ]
    (tmp / f"{config_name}.yaml").write_text(yaml.safe_dump(entry, sort_keys=False))


def load_eval_config(config_dir: str | Path, overrides: list[str]) -> EvalConfig:
    """Compose the evaluation config; with a run dir, its saved config is the base.

    :raises ConfigError: naming the key, option or path at fault
    """
    import tempfile

    config_dir = Path(config_dir).resolve()
    run = _run_dir_from(overrides)
    # "run" is also a config group of training, so Hydra must not see run=DIR as a group swap.
    overrides = [o for o in overrides if not (o.startswith(("run=", "policy=")) and o.partition("=")[2] == run)]
    try:
        if run is None:
            data = compose(config_dir, "evaluate", overrides)
        else:
            run_dir = Path(run).expanduser()
            for name in ("model.zip", "config.yaml"):
                if not (run_dir / name).is_file():
                    raise ConfigError(f"run: no {name} in {run_dir}")
            with tempfile.TemporaryDirectory() as tmp:
                _with_run_defaults(config_dir, "evaluate", run_dir, Path(tmp))
                data = compose(tmp, "evaluate", overrides)
            data["run"] = str(run_dir)
    except ConfigError as err:
        raise ConfigError(explain_unknown_key(EvalConfig, str(err))) from None
    return from_dict(EvalConfig, data)
