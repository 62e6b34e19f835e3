"""Environments: env factory, reward terms and registered gymnasium ids.

This package knows no learner and no perception model (see DEVELOPERS.md).
"""

from envs.config import EnvConfig, RewardConfig
from envs.factory import make_env
from envs.registration import SCENES, register_envs

register_envs()

__all__ = ["EnvConfig", "RewardConfig", "SCENES", "make_env", "register_envs"]
