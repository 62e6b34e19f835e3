"""Our gymnasium ids: highway-env scenes with the named-term reward and camera frames."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

NAMESPACE = "safedrive"

# our id -> highway-env id
SCENES = {
    f"{NAMESPACE}/HighwayFast-v0": "highway-fast-v0",
    f"{NAMESPACE}/Highway-v0": "highway-v0",
    f"{NAMESPACE}/Merge-v0": "merge-v1",
}


def register_envs() -> None:
    """Register our ids; idempotent, so safe in every (sub)process."""
    for env_id, highway_id in SCENES.items():
        if env_id not in registry:
            register(
                id=env_id,
                entry_point="envs.factory:make_registered_env",
                kwargs={"highway_id": highway_id},
                # The wrapped env already reports rich info; gymnasium's checker runs in tests.
                disable_env_checker=True,
            )
