"""Evaluation videos: every simulation frame, a HUD, and an inset of what the CNN sees.

highway-env renders intermediate simulation frames through the hook it offers
gymnasium's RecordVideo (``set_record_video_wrapper`` / ``_capture_frame``); the
recorder plugs into that hook, so motion is captured at the simulation rate.
Frames are encoded to H.264 (browser-playable) with the ffmpeg that imageio-ffmpeg ships.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agents.policies import ACTION_NAMES

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


def hud_band(width: int, lines: list[str], alert: str | None, inset: np.ndarray | None) -> np.ndarray:
    """The HUD band under the scene: text lines, a red alert and the camera inset."""
    band = np.zeros((HUD_HEIGHT, width, 3), dtype=np.uint8)
    text_right = width
    if inset is not None and inset.shape[1] < width // 2:
        band[4 : 4 + inset.shape[0], width - inset.shape[1] - 4 : width - 4] = inset
        text_right = width - inset.shape[1] - 8
    for i, line in enumerate(lines[:3]):
        _text(band, line, (6, 18 + 20 * i))
    if alert:
        cv2.circle(band, (text_right - 14, 14), 8, RED, -1)
        _text(band, alert, (6, 18 + 20 * 3 - 2), RED)
    return band


def compose(scene: np.ndarray, band: np.ndarray, alert: bool) -> np.ndarray:
    """Scene on top of the HUD band; a red frame around the scene while the monitor overrides."""
    frame = np.concatenate([scene, band], axis=0)
    if alert:
        cv2.rectangle(frame, (0, 0), (scene.shape[1] - 1, scene.shape[0] - 1), RED, 4)
    return frame


def draw_hud(scene: np.ndarray, lines: list[str], alert: str | None, inset: np.ndarray | None) -> np.ndarray:
    """Scene on top, a HUD band below with text lines, a red alert and the camera inset."""
    return compose(scene, hud_band(scene.shape[1], lines, alert, inset), bool(alert))


class VideoRecorder:
    """Records one episode to ``path``; call ``start`` after reset, ``on_step`` after each step, then ``save``.

    Frames stream to the encoder (a separate ffmpeg process) while the episode runs, and the
    HUD band is drawn once per decision, so recording costs little more than rendering.

    :param env: an env made with ``render_mode="rgb_array"``
    :param path: the MP4 to write (atomically, on ``save``)
    :param describe: optional obs -> text (e.g. the perception head's prediction)
    """

    def __init__(self, env: Any, path: str | Path, describe: Any = None) -> None:
        if getattr(env, "render_mode", None) != "rgb_array":
            raise ValueError("VideoRecorder needs an env made with render_mode='rgb_array'")
        self.env = env
        self.base = env.unwrapped
        self.path = Path(path)
        self.describe = describe
        self.fps = int(self.base.config["simulation_frequency"])
        self.frames_per_sec = self.fps  # read by highway-env's hook
        self.n_frames = 0
        self._pending: list[np.ndarray] = []
        self._obs: Any = None
        self._writer: Any = None
        self._tmp: Path | None = None

    # highway-env calls this for every intermediate simulation frame.
    def _capture_frame(self) -> None:
        self._pending.append(self.base.render())

    def start(self, obs: Any) -> None:
        """Begin the episode right after ``env.reset``."""
        self.base.set_record_video_wrapper(self)
        self._pending, self._obs = [], obs
        scene = self.base.render()
        self._open(scene.shape[1], scene.shape[0] + HUD_HEIGHT)
        self._write([scene], ["start"], None)

    def on_step(self, obs: Any, action: Any, reward: float, info: dict) -> None:
        """Annotate this decision's simulation frames with what happened, and encode them."""
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
        self._write(self._pending, lines, alert)
        self._pending, self._obs = [], obs

    def _write(self, scenes: list[np.ndarray], lines: list[str], alert: str | None) -> None:
        band = hud_band(scenes[0].shape[1], lines, alert, camera_inset(self._obs, HUD_HEIGHT - 8))
        for scene in scenes:
            self._writer.send(np.ascontiguousarray(compose(scene, band, bool(alert))))
            self.n_frames += 1

    def _open(self, width: int, height: int) -> None:
        import tempfile

        import imageio_ffmpeg

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer = imageio_ffmpeg.write_frames(
            tmp,
            (width, height),
            fps=self.fps,
            codec="libx264",
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            macro_block_size=2,
            output_params=["-f", "mp4", "-movflags", "+faststart"],
            ffmpeg_log_level="error",
        )
        self._writer.send(None)

    def save(self) -> Path:
        """Finish encoding and move the MP4 into place (H.264, yuv420p: plays in browsers)."""
        if self._writer is None or self._tmp is None:
            raise ValueError("no frames recorded")
        self._writer.close()
        os.chmod(self._tmp, 0o644)
        os.replace(self._tmp, self.path)
        self._writer, self._tmp = None, None
        return self.path

    def discard(self) -> None:
        """Drop an unfinished recording (nothing half-written stays behind)."""
        if self._writer is not None:
            self._writer.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self._writer, self._tmp = None, None
