"""Environments: env factory, reward terms and registered gymnasium ids.

This package knows no learner and no perception model (see DEVELOPERS.md).
"""

from envs.config import EnvConfig, RewardConfig
from envs.factory import make_env
from envs.registration import SCENES, register_envs
from envs.scenarios import SCENARIO_IDS, register_scenarios

register_envs()
register_scenarios()

__all__ = ["EnvConfig", "RewardConfig", "SCENARIO_IDS", "SCENES", "make_env", "register_envs"]
