"""Time the PPO features extractor's forward pass on camera frames (CPU, batch of 64 by default).

python scripts/bench_extractor.py [--batch 64] [--repeats 50] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--shape", default="4,128,64", help="frame stack, width, height")
    args = parser.parse_args(argv)
    import numpy as np
    import torch
    from gymnasium import spaces

    from perception import FramesExtractor

    if args.threads:
        torch.set_num_threads(args.threads)
    shape = tuple(int(s) for s in args.shape.split(","))
    extractor = FramesExtractor(spaces.Box(0, 255, shape, np.uint8)).eval()
    frames = torch.randint(0, 256, (args.batch, *shape), dtype=torch.uint8).float()
    with torch.no_grad():
        for _ in range(5):
            extractor(frames)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            extractor(frames)
            times.append(time.perf_counter() - start)
    per_batch = float(np.median(times))
    print(
        f"frames {shape}, batch {args.batch}, torch threads {torch.get_num_threads()}: "
        f"median {1000 * per_batch:.2f} ms per batch = {1000 * per_batch / args.batch:.3f} ms per frame"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
