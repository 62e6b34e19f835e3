"""Fast top-down frames for evaluation videos.

highway-env redraws every lane stripe of the road and builds a rotated pygame surface per
vehicle for every frame, which costs about as much as a simulation step. Videos capture every
simulation frame, so that cost dominates recording. On a straight road along x (the highway
envs) this module does the same picture cheaper:

- the road only shifts with the camera, and its stripes repeat every
  ``LaneGraphics.STRIPE_SPACING`` metres. It is drawn once, by highway-env's own code, onto a
  backdrop one stripe period wider than the screen and as tall as the road plus a screen; each
  frame copies the right window of it (a numpy slice);
- vehicles are drawn as filled, outlined rotated rectangles with highway-env's colours
  (``VehicleGraphics.get_color``) and headlights, with OpenCV on that array.

Other roads (curves, merges, road objects) fall back to highway-env's full redraw.
Frames come out as raw RGB bytes, the encoder's input format.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import pygame

SUBPIXEL_BITS = 4  # cv2 polygon coordinates in 1/16 px: smooth motion without anti-aliasing cost
OUTLINE = (60, 60, 60)
BACKDROP_CACHE = 4  # road drawings kept across episodes and renderers (a few MB each)
_backdrops: OrderedDict[tuple, RoadBackdrop] = OrderedDict()


def _straight_lanes(road: Any) -> list[Any] | None:
    """The road's lanes if all are straight, along +x and start at the same x (stripes in phase), else None."""
    from highway_env.road.lane import StraightLane

    if getattr(road, "objects", None):
        return None
    lanes = road.network.lanes_list()
    for lane in lanes:
        if not isinstance(lane, StraightLane) or lane.start[1] != lane.end[1] or lane.end[0] <= lane.start[0]:
            return None
        if lane.start[0] != lanes[0].start[0]:
            return None
    return lanes


class RoadBackdrop:
    """The road of a straight highway, drawn once by highway-env and sliced at the camera's position.

    :param road: the highway-env road (all lanes straight along x)
    :param lanes: its lanes
    :param screen: the viewer's surface (size and scaling are read from it)
    """

    def __init__(self, road: Any, lanes: list[Any], screen: Any) -> None:
        from highway_env.road.graphics import LaneGraphics, RoadGraphics, WorldSurface

        self.scaling = float(screen.scaling)
        self.period = float(LaneGraphics.STRIPE_SPACING)  # m between stripe starts
        width, height = screen.get_size()
        half_lane = max(float(lane.width) for lane in lanes) / 2
        margin_y = height / self.scaling
        self.y0 = min(lane.start[1] for lane in lanes) - half_lane - margin_y
        y1 = max(lane.start[1] for lane in lanes) + half_lane + margin_y
        self.x_range = (float(lanes[0].start[0]), min(float(lane.end[0]) for lane in lanes))
        size = (width + int(np.ceil(self.period * self.scaling)) + 2, int(np.ceil((y1 - self.y0) * self.scaling)))
        surface = WorldSurface(size, 0, pygame.Surface(size))
        surface.scaling = self.scaling
        # The backdrop's left edge sits on a stripe start, so a window's offset into it is the
        # camera's phase within one stripe period.
        self.x0 = self.x_range[0] + self.period * np.ceil(width / self.scaling / self.period)
        surface.origin = np.array([self.x0, self.y0])
        RoadGraphics.display(road, surface)
        self.pixels = np.frombuffer(pygame.image.tobytes(surface, "RGB"), np.uint8).reshape(size[1], size[0], 3)
        self.screen_size = (width, height)

    def window(self, origin: np.ndarray) -> np.ndarray | None:
        """A writable copy of the road as seen from a window at ``origin`` [m], or None if outside."""
        width, height = self.screen_size
        if not self.x_range[0] + self.period <= origin[0] <= self.x_range[1] - width / self.scaling - self.period:
            return None
        x = int(round(((origin[0] - self.x0) % self.period) * self.scaling))
        y = int(round((origin[1] - self.y0) * self.scaling))
        if y < 0 or y + height > self.pixels.shape[0]:
            return None
        return self.pixels[y : y + height, x : x + width].copy()


@lru_cache(maxsize=16)
def _vehicle_template(length: float, width: float) -> np.ndarray:
    """Corners [m] of the body and the two headlights in the vehicle's frame (x forward, y left): 12 x 2."""

    def box(along: float, across: float, box_l: float, box_w: float) -> list[tuple[float, float]]:
        return [(along + a * box_l / 2, across + b * box_w / 2) for a, b in ((1, 1), (1, -1), (-1, -1), (-1, 1))]

    lights = [box(length / 2 - 0.36, side * width / 2 * 0.55, 0.72, 0.6) for side in (1, -1)]
    return np.array(box(0.0, 0.0, length, width) + lights[0] + lights[1])


def draw_vehicle(img: np.ndarray, vehicle: Any, origin: np.ndarray, scaling: float, color: tuple, light: tuple) -> None:
    """A vehicle as highway-env shows it: a rotated rectangle of ``color``, outlined, with two ``light`` headlights."""
    c, s = np.cos(vehicle.heading), np.sin(vehicle.heading)
    corners = _vehicle_template(vehicle.LENGTH, vehicle.WIDTH) @ np.array([[c, s], [-s, c]])
    corners = (corners + (np.asarray(vehicle.position, dtype=float) - origin)) * (scaling * (1 << SUBPIXEL_BITS))
    body, left, right = np.round(corners).astype(np.int32).reshape(3, 4, 2)
    cv2.fillConvexPoly(img, body, color[:3], cv2.LINE_8, SUBPIXEL_BITS)
    cv2.fillConvexPoly(img, left, light[:3], cv2.LINE_8, SUBPIXEL_BITS)
    cv2.fillConvexPoly(img, right, light[:3], cv2.LINE_8, SUBPIXEL_BITS)
    cv2.polylines(img, [body], True, OUTLINE, 1, cv2.LINE_8, SUBPIXEL_BITS)


class FrameRenderer:
    """Renders an env's top-down view to RGB bytes with its viewer's size, scaling and centering.

    :param base: the unwrapped highway-env env (made with ``render_mode="rgb_array"``)
    :param fast: use the cached road and OpenCV vehicles where the road allows it
    """

    def __init__(self, base: Any, fast: bool = True) -> None:
        from highway_env.envs.common.graphics import EnvViewer

        self.base = base
        if base.viewer is None:
            base.viewer = EnvViewer(base)
        self.viewer = base.viewer
        self.screen = self.viewer.sim_surface
        self.fast = fast

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of a frame in pixels."""
        return self.screen.get_size()

    def _road_backdrop(self) -> RoadBackdrop | None:
        road = self.base.road
        lanes = _straight_lanes(road) if self.fast else None
        if lanes is None:
            return None
        # Every reset builds a new road, usually with the same lanes: reuse the drawing then,
        # also in the next episode's recorder.
        key = (
            tuple((tuple(lane.start), tuple(lane.end), lane.width, tuple(lane.line_types)) for lane in lanes),
            self.screen.get_size(),
            float(self.screen.scaling),
        )
        backdrop = _backdrops.pop(key, None) or RoadBackdrop(road, lanes, self.screen)
        _backdrops[key] = backdrop
        while len(_backdrops) > BACKDROP_CACHE:
            _backdrops.popitem(last=False)
        return backdrop

    def render(self) -> bytes:
        """The current scene as H x W x 3 RGB bytes."""
        self.screen.move_display_window_to(self.viewer.window_position())
        backdrop = self._road_backdrop()
        img = backdrop.window(self.screen.origin) if backdrop is not None else None
        frame = self._draw_fast(img) if img is not None else self._draw_highway_env()
        # highway-env draws intermediate frames only while this flag is set; its own render() sets it.
        self.base.enable_auto_render = True
        return frame

    def _draw_fast(self, img: np.ndarray) -> bytes:
        from highway_env.vehicle.graphics import VehicleGraphics

        origin, scaling = np.asarray(self.screen.origin, dtype=float), float(self.screen.scaling)
        width, height = self.size
        margin = 10.0  # m: a vehicle whose centre is just off-screen still shows its nose
        x_min, y_min = origin[0] - margin, origin[1] - margin
        x_max, y_max = origin[0] + width / scaling + margin, origin[1] + height / scaling + margin
        for vehicle in self.base.road.vehicles:
            x, y = vehicle.position
            if x_min < x < x_max and y_min < y < y_max:
                color = VehicleGraphics.get_color(vehicle)
                draw_vehicle(img, vehicle, origin, scaling, color, VehicleGraphics.lighten(color))
        return img.tobytes()

    def _draw_highway_env(self) -> bytes:
        from highway_env.envs.common.graphics import ObservationGraphics
        from highway_env.road.graphics import RoadGraphics

        screen, road = self.screen, self.base.road
        RoadGraphics.display(road, screen)
        RoadGraphics.display_road_objects(road, screen, offscreen=True)
        RoadGraphics.display_traffic(
            road, screen, simulation_frequency=self.base.config["simulation_frequency"], offscreen=True
        )
        ObservationGraphics.display(self.base.observation_type, screen)
        return pygame.image.tobytes(screen, "RGB")

    def render_array(self) -> np.ndarray:
        """:meth:`render` as an H x W x 3 uint8 array."""
        width, height = self.size
        return np.frombuffer(self.render(), dtype=np.uint8).reshape(height, width, 3)
