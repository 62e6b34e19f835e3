"""Fast top-down frames for evaluation videos, drawn with highway-env's own graphics code.

highway-env redraws every lane stripe of the road for every frame, which costs more than the
simulation step itself. On a straight road along x the road picture only shifts with the
camera, and its stripes repeat every ``LaneGraphics.STRIPE_SPACING`` metres. So the road is
drawn once, by highway-env, onto a backdrop one stripe period wider than the screen and as
tall as the road plus a screen, and each frame blits the right window of it. Vehicles and
road objects are drawn on top as usual. Roads with curves (e.g. ``merge``) keep the full redraw.

Frames come out as raw RGB bytes (``pygame.image.tobytes``), the encoder's input format, so
no pixel array is converted or copied on the way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pygame


def _straight_lanes(road: Any) -> list[Any] | None:
    """The road's lanes if all are straight, along +x and start at the same x (stripes in phase), else None."""
    from highway_env.road.lane import StraightLane

    lanes = road.network.lanes_list()
    for lane in lanes:
        if not isinstance(lane, StraightLane) or lane.start[1] != lane.end[1] or lane.end[0] <= lane.start[0]:
            return None
        if lane.start[0] != lanes[0].start[0]:
            return None
    return lanes


class RoadBackdrop:
    """The road of a straight highway, drawn once and blitted at the camera's position.

    :param road: the highway-env road (all lanes straight along x)
    :param lanes: its lanes
    :param screen: the viewer's surface (size and scaling are read from it)
    """

    def __init__(self, road: Any, lanes: list[Any], screen: Any) -> None:
        from highway_env.road.graphics import LaneGraphics, RoadGraphics, WorldSurface

        self.road = road
        self.scaling = float(screen.scaling)
        self.period = float(LaneGraphics.STRIPE_SPACING)  # m between stripe starts
        width, height = screen.get_size()
        margin_y = height / self.scaling
        self.y0 = min(lane.start[1] for lane in lanes) - lane_half_width(lanes) - margin_y
        y1 = max(lane.start[1] for lane in lanes) + lane_half_width(lanes) + margin_y
        self.x_range = (max(lane.start[0] for lane in lanes), min(lane.end[0] for lane in lanes))
        # Two periods of slack: int() rounding in highway-env's pix() may shift a stripe by a pixel.
        size = (width + int(np.ceil(2 * self.period * self.scaling)) + 2, int(np.ceil((y1 - self.y0) * self.scaling)))
        surface = WorldSurface(size, 0, pygame.Surface(size))
        surface.scaling = self.scaling
        # The backdrop's left edge sits on a stripe start, so a window's offset into it is the
        # camera's phase within one stripe period.
        self.x0 = self.x_range[0] + self.period * np.ceil(width / self.scaling / self.period)
        surface.origin = np.array([self.x0, self.y0])
        RoadGraphics.display(road, surface)
        self.surface = surface
        self.screen_size = (width, height)

    def covers(self, origin: np.ndarray) -> bool:
        """Whether the window at ``origin`` [m] lies within the backdrop and the lanes' extent."""
        width, height = self.screen_size
        top = (origin[1] - self.y0) * self.scaling
        right = origin[0] + width / self.scaling
        return (
            0 <= top
            and top + height <= self.surface.get_height()
            and self.x_range[0] <= origin[0] - self.period
            and right + self.period <= self.x_range[1]
        )

    def blit(self, screen: Any) -> None:
        """Draw the road window at ``screen.origin``."""
        phase = (screen.origin[0] - self.x0) % self.period
        x = int(round(phase * self.scaling))
        y = int(round((screen.origin[1] - self.y0) * self.scaling))
        screen.blit(self.surface, (0, 0), pygame.Rect(x, y, *self.screen_size))


def lane_half_width(lanes: list[Any]) -> float:
    return max(float(lane.width) for lane in lanes) / 2


class FrameRenderer:
    """Renders an env's top-down view to RGB bytes, reusing its viewer's surface and settings.

    :param base: the unwrapped highway-env env (made with ``render_mode="rgb_array"``)
    :param cache_road: blit a cached road backdrop where the road allows it
    """

    def __init__(self, base: Any, cache_road: bool = True) -> None:
        from highway_env.envs.common.graphics import EnvViewer

        self.base = base
        if base.viewer is None:
            base.viewer = EnvViewer(base)
        self.viewer = base.viewer
        self.screen = self.viewer.sim_surface
        self.cache_road = cache_road
        self._backdrop: RoadBackdrop | None = None
        self._backdrop_road: Any = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of a frame in pixels."""
        return self.screen.get_size()

    def _road_backdrop(self) -> RoadBackdrop | None:
        road = self.base.road
        if self._backdrop_road is not road:  # a reset builds a new road
            lanes = _straight_lanes(road) if self.cache_road else None
            self._backdrop = RoadBackdrop(road, lanes, self.screen) if lanes else None
            self._backdrop_road = road
        return self._backdrop

    def render(self) -> bytes:
        """The current scene as H x W x 3 RGB bytes."""
        from highway_env.envs.common.graphics import ObservationGraphics
        from highway_env.road.graphics import RoadGraphics

        screen, road = self.screen, self.base.road
        screen.move_display_window_to(self.viewer.window_position())
        backdrop = self._road_backdrop()
        if backdrop is not None and backdrop.covers(screen.origin):
            backdrop.blit(screen)
        else:
            RoadGraphics.display(road, screen)
        RoadGraphics.display_road_objects(road, screen, offscreen=True)
        RoadGraphics.display_traffic(
            road, screen, simulation_frequency=self.base.config["simulation_frequency"], offscreen=True
        )
        ObservationGraphics.display(self.base.observation_type, screen)
        # highway-env draws intermediate frames only while this flag is set; its own render() sets it.
        self.base.enable_auto_render = True
        return pygame.image.tobytes(screen, "RGB")

    def render_array(self) -> np.ndarray:
        """:meth:`render` as an H x W x 3 uint8 array."""
        width, height = self.size
        return np.frombuffer(self.render(), dtype=np.uint8).reshape(height, width, 3)
