"""Evaluation videos: every simulation frame, a HUD, and an inset of what the CNN sees.

highway-env renders intermediate simulation frames through the hook it offers
gymnasium's RecordVideo (``set_record_video_wrapper`` / ``_capture_frame``); the
recorder plugs into that hook, so motion is captured at the simulation rate.
Frames are encoded to H.264 (browser-playable) with the ffmpeg that imageio-ffmpeg ships.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agents.policies import ACTION_NAMES
from envs.io import atomic_write

HUD_HEIGHT = 72  # px below the scene
RED = (220, 30, 30)
WHITE = (255, 255, 255)


def _text(img: np.ndarray, text: str, org: tuple[int, int], color=WHITE, scale: float = 0.45) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def camera_inset(obs: Any, height: int) -> np.ndarray | None:
    """The newest camera frame (stack x width x height) as an RGB image ``height`` px tall."""
    frames = np.asarray(obs)
    if frames.ndim != 3 or frames.dtype != np.uint8:
        return None
    gray = frames[-1].T  # highway-env stores frames as width x height
    width = int(round(gray.shape[1] * height / gray.shape[0]))
    scaled = cv2.resize(gray, (width, height), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(scaled, cv2.COLOR_GRAY2RGB)


def draw_hud(scene: np.ndarray, lines: list[str], alert: str | None, inset: np.ndarray | None) -> np.ndarray:
    """Scene on top, a HUD band below with text lines, a red alert and the camera inset."""
    h, w, _ = scene.shape
    frame = np.zeros((h + HUD_HEIGHT, w, 3), dtype=np.uint8)
    frame[:h] = scene
    text_right = w
    if inset is not None and inset.shape[1] < w // 2:
        frame[h + 4 : h + 4 + inset.shape[0], w - inset.shape[1] - 4 : w - 4] = inset
        text_right = w - inset.shape[1] - 8
    for i, line in enumerate(lines[:3]):
        _text(frame, line, (6, h + 18 + 20 * i))
    if alert:
        cv2.rectangle(frame, (0, 0), (w - 1, h - 1), RED, 4)
        cv2.circle(frame, (text_right - 14, h + 14), 8, RED, -1)
        _text(frame, alert, (6, h + 18 + 20 * 3 - 2), RED)
    return frame


class VideoRecorder:
    """Records one episode at a time; use ``start`` after reset and ``on_step`` after each step.

    :param env: an env made with ``render_mode="rgb_array"``
    :param describe: optional obs -> text (e.g. the perception head's prediction)
    """

    def __init__(self, env: Any, describe: Any = None) -> None:
        if getattr(env, "render_mode", None) != "rgb_array":
            raise ValueError("VideoRecorder needs an env made with render_mode='rgb_array'")
        self.env = env
        self.base = env.unwrapped
        self.describe = describe
        self.fps = int(self.base.config["simulation_frequency"])
        self.frames: list[np.ndarray] = []
        self._pending: list[np.ndarray] = []
        self._obs: Any = None
        self.frames_per_sec = self.fps  # read by highway-env's hook

    # highway-env calls this for every intermediate simulation frame.
    def _capture_frame(self) -> None:
        self._pending.append(self.base.render())

    def start(self, obs: Any) -> None:
        """Begin an episode right after ``env.reset``."""
        self.base.set_record_video_wrapper(self)
        self.frames, self._pending, self._obs = [], [], obs
        self.frames.append(self._annotate(self.base.render(), ["start"], None))

    def on_step(self, obs: Any, action: Any, reward: float, info: dict) -> None:
        """Annotate this decision's simulation frames with what happened."""
        self._pending.append(self.base.render())  # the last frame is not auto-rendered
        safety = info.get("safety") or {}
        executed = safety.get("executed_action", action)
        lines = [
            f"t {self.base.time:4.1f} s   speed {info['speed']:5.1f} m/s   reward {reward:+.2f}",
            f"action {ACTION_NAMES.get(int(np.asarray(executed)), executed)}"
            + ("   CRASH" if info.get("crashed") else ""),
        ]
        if self.describe is not None:
            text = self.describe(self._obs)
            if text:
                lines.append(f"perception: {text}")
        alert = None
        if safety.get("overridden"):
            proposed = ACTION_NAMES.get(int(np.asarray(safety.get("proposed_action", action))), "?")
            alert = f"OVERRIDE ({proposed}): {safety.get('reason', '')}"
        for scene in self._pending:
            self.frames.append(self._annotate(scene, lines, alert))
        self._pending, self._obs = [], obs

    def _annotate(self, scene: np.ndarray, lines: list[str], alert: str | None) -> np.ndarray:
        return draw_hud(scene, lines, alert, camera_inset(self._obs, HUD_HEIGHT - 8))

    def save(self, path: str | Path) -> Path:
        """Encode the recorded episode to H.264 MP4, atomically."""
        if not self.frames:
            raise ValueError("no frames recorded")
        return write_mp4(path, self.frames, self.fps)


def write_mp4(path: str | Path, frames: list[np.ndarray], fps: int) -> Path:
    """H.264 (yuv420p) MP4 that plays in browsers."""
    import imageio_ffmpeg

    h, w, _ = frames[0].shape

    def write(tmp: Path) -> None:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (w, h),
            fps=fps,
            codec="libx264",
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            macro_block_size=2,
            output_params=["-f", "mp4", "-movflags", "+faststart"],
            ffmpeg_log_level="error",
        )
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()

    return atomic_write(path, write)
