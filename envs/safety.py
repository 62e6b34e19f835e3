"""Safety formulas on ground-truth kinematics: RSS safe distance and time-to-collision.

Plain functions, usable by the safety monitor, the evaluation and the tests.
References: Shalev-Shwartz, Shammah, Shashua, "On a Formal Model of Safe and
Scalable Self-driving Cars" (2017), definition of the safe longitudinal distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RSSParams:
    """RSS longitudinal parameters; defaults are the paper's suggested values."""

    response_time: float = 1.0
    """rho [s]: the rear car may accelerate for this long before it brakes."""
    accel_max: float = 3.5
    """Maximum acceleration of the rear car during the response time [m/s^2]."""
    brake_min: float = 4.0
    """Braking the rear car is guaranteed to apply after the response time [m/s^2]."""
    brake_max: float = 8.0
    """Hardest braking the front car may apply [m/s^2]."""

    def __post_init__(self) -> None:
        if self.response_time < 0:
            raise ValueError(f"response_time: must be >= 0, got {self.response_time}")
        for name in ("accel_max", "brake_min", "brake_max"):
            if getattr(self, name) < 0 or (name != "accel_max" and getattr(self, name) == 0):
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")


def safe_longitudinal_distance(v_rear: float, v_front: float, params: RSSParams = RSSParams()) -> float:
    """Minimal bumper-to-bumper gap [m] for the rear car to avoid hitting the front one.

    d_min = [v_r rho + a_max rho^2 / 2 + (v_r + rho a_max)^2 / (2 b_min) - v_f^2 / (2 b_max)]_+

    :param v_rear: rear car speed [m/s]
    :param v_front: front car speed [m/s]
    """
    rho = params.response_time
    v_after = v_rear + rho * params.accel_max
    d = (
        v_rear * rho
        + 0.5 * params.accel_max * rho**2
        + v_after**2 / (2 * params.brake_min)
        - v_front**2 / (2 * params.brake_max)
    )
    return max(d, 0.0)


def time_to_collision(gap: float, v_rear: float, v_front: float) -> float:
    """Seconds until the rear car reaches the front one at constant speeds; ``inf`` if not closing.

    :param gap: bumper-to-bumper distance [m]; <= 0 means already touching (TTC 0)
    :param v_rear: rear car speed [m/s]
    :param v_front: front car speed [m/s]
    """
    if gap <= 0:
        return 0.0
    closing = v_rear - v_front
    return gap / closing if closing > 0 else math.inf
