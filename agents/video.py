"""Evaluation videos: every simulation frame, a HUD, and an inset of what the CNN sees.

highway-env renders intermediate simulation frames through the hook it offers
gymnasium's RecordVideo (``set_record_video_wrapper`` / ``_capture_frame``); the
recorder plugs into that hook, so motion is captured at the simulation rate.
Frames are encoded to H.264 (browser-playable) with the ffmpeg that imageio-ffmpeg ships.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agents.policies import ACTION_NAMES
from agents.rendering import FrameRenderer

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


def red_border(scene: bytes, width: int, height: int, thickness: int = 4) -> bytes:
    """An RGB frame (raw bytes) with a red border: the monitor overrode the decision it shows."""
    img = np.frombuffer(bytearray(scene), dtype=np.uint8).reshape(height, width, 3)
    img[:thickness], img[-thickness:], img[:, :thickness], img[:, -thickness:] = RED, RED, RED, RED
    return img.tobytes()


class EncoderPipe:
    """H.264 encoding in an ffmpeg process, fed from a background thread.

    Writing a frame into the pipe blocks until ffmpeg has read it; the feeder thread takes
    that wait (pipe writes release the GIL), so rendering goes on while ffmpeg encodes.

    :param path: the MP4 to write
    :param size: (width, height) of a frame in pixels
    :param fps: frames per second
    """

    def __init__(self, path: Path, size: tuple[int, int], fps: int, queue_frames: int = 64) -> None:
        import imageio_ffmpeg

        self._ffmpeg = imageio_ffmpeg.write_frames(
            str(path),
            size,
            fps=fps,
            codec="libx264",
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            macro_block_size=2,
            # ultrafast on one thread: the encoder keeps pace on one core and leaves the other to the episode.
            output_params=["-preset", "ultrafast", "-threads", "1", "-f", "mp4", "-movflags", "+faststart"],
            ffmpeg_log_level="error",
        )
        self._ffmpeg.send(None)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=queue_frames)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._feed, name="video-encoder", daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        while (frame := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._ffmpeg.send(frame)
                except BaseException as err:  # noqa: BLE001  (re-raised in the caller's thread)
                    self._error = err

    def send(self, frame: bytes) -> None:
        """Queue one H x W x 3 RGB frame."""
        if self._error is not None:
            raise self._error
        self._queue.put(frame)

    def close(self) -> None:
        """Wait for every queued frame, then let ffmpeg finish the file."""
        self._queue.put(None)
        self._thread.join()
        self._ffmpeg.close()
        if self._error is not None:
            raise self._error


class VideoRecorder:
    """Records one episode to ``path``; call ``start`` after reset, ``on_step`` after each step, then ``save``.

    Frames stream as raw bytes to the encoder (a separate ffmpeg process, x264's fastest
    preset) while the episode runs; the road is blitted from a cached backdrop
    (:mod:`agents.rendering`) and the HUD band is drawn once per decision.

    :param env: an env made with ``render_mode="rgb_array"``
    :param path: the MP4 to write (atomically, on ``save``)
    :param describe: optional obs -> text (e.g. the perception head's prediction)
    """

    def __init__(self, env: Any, path: str | Path, describe: Any = None) -> None:
        if getattr(env, "render_mode", None) != "rgb_array":
            raise ValueError("VideoRecorder needs an env made with render_mode='rgb_array'")
        self.env = env
        self.base = env.unwrapped
        self.renderer: FrameRenderer | None = None
        self.path = Path(path)
        self.describe = describe
        self.fps = int(self.base.config["simulation_frequency"])
        self.frames_per_sec = self.fps  # read by highway-env's hook
        self.n_frames = 0
        self._pending: list[bytes] = []
        self._obs: Any = None
        self._writer: Any = None
        self._tmp: Path | None = None

    # highway-env calls this for every intermediate simulation frame.
    def _capture_frame(self) -> None:
        self._pending.append(self.renderer.render())

    def start(self, obs: Any) -> None:
        """Begin the episode right after ``env.reset``."""
        self.base.set_record_video_wrapper(self)
        self.renderer = FrameRenderer(self.base)
        self._pending, self._obs = [], obs
        width, height = self.renderer.size
        self._open(width, height + HUD_HEIGHT)
        self._write([self.renderer.render()], ["start"], None)

    def on_step(self, obs: Any, action: Any, reward: float, info: dict) -> None:
        """Annotate this decision's simulation frames with what happened, and encode them."""
        self._pending.append(self.renderer.render())  # highway-env leaves the last frame to render()
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

    def _write(self, scenes: list[bytes], lines: list[str], alert: str | None) -> None:
        width, height = self.renderer.size
        band = hud_band(width, lines, alert, camera_inset(self._obs, HUD_HEIGHT - 8)).tobytes()
        for scene in scenes:
            if alert:  # the verdict comes after the step, so the border goes onto finished frames
                scene = red_border(scene, width, height)
            self._writer.send(scene + band)
            self.n_frames += 1

    def _open(self, width: int, height: int) -> None:
        import tempfile

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer = EncoderPipe(self._tmp, (width, height), self.fps)

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
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001  (already failing: the caller's error is the one to report)
                pass
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self._writer, self._tmp = None, None
