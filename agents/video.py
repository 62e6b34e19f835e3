"""Evaluation videos: every simulation frame, a HUD, and an inset of what the CNN sees.

highway-env renders intermediate simulation frames through the hook it offers
gymnasium's RecordVideo (``set_record_video_wrapper`` / ``_capture_frame``); the
recorder plugs into that hook, so motion is captured at the simulation rate.
Frames are encoded to H.264 (browser-playable) with the ffmpeg that imageio-ffmpeg ships.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import tempfile
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
ENCODER_NICENESS = 10  # ffmpeg yields the CPU to the episode


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
    """An MP4 encoded to H.264 by an ffmpeg process that a background thread starts, feeds and finishes.

    Neither the process start, nor the wait for the encoder's last frames, nor the move into
    place lands on the caller's path: :meth:`finish` returns at once and :meth:`wait` collects
    the result later (e.g. after the next episode). Pipe writes and waits release the GIL, and
    ffmpeg runs at a lower priority, so rendering the episode comes first when the cores are busy.
    The MP4 appears at ``path`` only when complete; on any failure nothing is left behind.

    :param path: the MP4 to write
    :param size: (width, height) of a frame in pixels
    :param fps: frames per second
    :param max_frames: frames (or frame parts) queued before :meth:`send` waits for the encoder
    """

    def __init__(self, path: str | Path, size: tuple[int, int], fps: int, max_frames: int = 512) -> None:
        width, height = size
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        self._tmp = Path(tmp)
        self._cmd = ffmpeg_command(self._tmp, size, fps)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max_frames)
        self._error: BaseException | None = None
        self._abandon = False
        self._finished = False
        self._log: Any = None
        self._thread = threading.Thread(target=self._run, name="video-encoder", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ caller's side
    def send(self, *chunks: bytes) -> None:
        """Queue raw RGB bytes; consecutive chunks may split a frame (e.g. scene rows, then HUD rows)."""
        if self._error is not None:
            raise self._error
        if self._finished:
            raise ValueError(f"{self.path}: frames sent after finish()")
        for chunk in chunks:
            self._queue.put(chunk)

    def finish(self) -> EncoderPipe:
        """No more frames: the file is completed in the background. Returns ``self`` (call :meth:`wait`)."""
        if not self._finished:
            self._finished = True
            self._queue.put(None)
        return self

    def wait(self) -> Path:
        """Finish if not yet done, block until the MP4 is in place, return its path; re-raises its error."""
        self.finish()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.path

    def discard(self) -> None:
        """Stop encoding and remove the unfinished file; never raises.

        Called before :meth:`finish`, no MP4 appears; after it, one that is already complete stays.
        """
        self._abandon = True
        self.finish()
        self._thread.join()

    # ------------------------------------------------------------------ encoder thread
    def _run(self) -> None:
        try:
            self._encode()
        finally:
            if self._log is not None:
                self._log.close()

    def _encode(self) -> None:
        proc: subprocess.Popen | None = None
        try:
            proc = self._spawn()
        except BaseException as err:  # noqa: BLE001  (re-raised in the caller's thread)
            self._error = err
        # Keep draining after a failure, so the caller never blocks on a full queue.
        while (chunk := self._queue.get()) is not None:
            if self._error is None and not self._abandon:
                try:
                    proc.stdin.write(chunk)
                except BaseException as err:  # noqa: BLE001
                    self._error = self._ffmpeg_error(proc, err)
        if self._error is None and not self._abandon:
            try:
                self._complete(proc)
                return
            except BaseException as err:  # noqa: BLE001
                self._error = err
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            with contextlib.suppress(OSError):  # the pipe's other end is gone
                proc.stdin.close()
        self._tmp.unlink(missing_ok=True)

    def _spawn(self) -> subprocess.Popen:
        self._log = tempfile.TemporaryFile()  # not a pipe: a chatty ffmpeg must never block on it
        proc = subprocess.Popen(self._cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)
        try:
            # The episode is the critical path; ffmpeg catches up whenever a core is free.
            os.setpriority(os.PRIO_PROCESS, proc.pid, ENCODER_NICENESS)
        except (AttributeError, OSError):
            pass
        return proc

    def _complete(self, proc: subprocess.Popen) -> None:
        proc.stdin.close()
        if proc.wait() != 0:
            raise self._ffmpeg_error(proc, None)
        os.chmod(self._tmp, 0o644)
        os.replace(self._tmp, self.path)

    def _ffmpeg_error(self, proc: subprocess.Popen, cause: BaseException | None) -> RuntimeError:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self._log.seek(0)
        log = self._log.read().decode(errors="replace").strip().splitlines()
        detail = log[-1] if log else (str(cause) if cause else f"exit status {proc.returncode}")
        return RuntimeError(f"ffmpeg could not write {self.path}: {detail}")


def ffmpeg_command(path: Path, size: tuple[int, int], fps: int) -> list[str]:
    """Raw RGB frames on stdin -> browser-playable MP4 (H.264, yuv420p), x264's fastest preset on one thread."""
    import imageio_ffmpeg

    width, height = size
    # yuv420p needs even sides: pad odd ones with a black row or column rather than fail.
    pad = ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"] if width % 2 or height % 2 else []
    return [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-y",
        "-loglevel", "error",
        "-f", "rawvideo",
        "-pix_fmt", "rgb24",
        "-s", f"{width}x{height}",
        "-r", str(fps),
        "-i", "-",
        "-an",
        *pad,
        "-c:v", "libx264",
        "-preset", "ultrafast",
        "-crf", "25",
        "-threads", "1",
        "-pix_fmt", "yuv420p",
        "-movflags", "+faststart",
        "-f", "mp4",
        str(path),
    ]  # fmt: skip


class VideoRecorder:
    """Records one episode to ``path``; call ``start`` after reset, ``on_step`` after each step, then ``save``.

    Frames stream as raw bytes to the encoder (:class:`EncoderPipe`: an ffmpeg process, x264's
    fastest preset) while the episode runs; the road is blitted from a cached backdrop
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
        self._writer: EncoderPipe | None = None

    # highway-env calls this for every intermediate simulation frame.
    def _capture_frame(self) -> None:
        self._pending.append(self.renderer.render())

    def start(self, obs: Any) -> None:
        """Begin the episode right after ``env.reset``."""
        self.base.set_record_video_wrapper(self)
        self.renderer = FrameRenderer(self.base)
        self._pending, self._obs = [], obs
        width, height = self.renderer.size
        self._writer = EncoderPipe(self.path, (width, height + HUD_HEIGHT), self.fps)
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
            self._writer.send(scene, band)
            self.n_frames += 1

    def save(self) -> Path:
        """Finish encoding and move the MP4 into place (H.264, yuv420p: plays in browsers); blocks."""
        return self.save_in_background().wait()

    def save_in_background(self) -> EncoderPipe:
        """Like :meth:`save`, but return at once; the MP4 is in place after the returned pipe's ``wait()``."""
        if self._writer is None:
            raise ValueError("no frames recorded")
        writer, self._writer = self._writer, None
        return writer.finish()

    def discard(self) -> None:
        """Drop an unfinished recording (nothing half-written stays behind)."""
        if self._writer is not None:
            self._writer.discard()
        self._writer = None
