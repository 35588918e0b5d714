"""First scoring vs new-seed regeneration of a timeline selection, on the torch-free runtime.

    python benchmarks/bench_score.py [VIDEO] [--seconds 30] [--steps N] [--repeat 3]

Builds a two-clip OTIO timeline over VIDEO (default examples/sample.mp4) in a temp folder,
then times ``ScoringSession.generate`` with a cold feature cache (first scoring) and with a
new seed (features reused: only sampling and decoding run). Prints medians and the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_timeline(video: Path, folder: Path, seconds: float) -> Path:
    import opentimelineio as otio
    from diffv2m import media
    info = media.probe(video)
    rate = float(info.fps)
    half = int(seconds * rate / 2)
    RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
    ref = otio.schema.ExternalReference(target_url=str(video.resolve()),
                                        available_range=TR(RT(0, rate), RT(info.frames or half * 2, rate)))
    track = otio.schema.Track(name="V1")
    track.append(otio.schema.Clip(name="a", media_reference=ref.clone(),
                                  source_range=TR(RT(half, rate), RT(half, rate))))
    track.append(otio.schema.Clip(name="b", media_reference=ref.clone(),
                                  source_range=TR(RT(0, rate), RT(half, rate))))
    path = folder / "bench.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="bench", tracks=[track]), str(path))
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("video", nargs="?", default=str(ROOT / "examples" / "sample.mp4"))
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--steps", type=int, default=None, help="default: the model's own")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    from diffv2m.plugin.session import ScoringSession
    from diffv2m.runtime.ort import load_runtime
    from diffv2m.synthesis import Settings
    backend = load_runtime(threads=args.threads)
    first, again = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tl = build_timeline(Path(args.video), Path(tmp), args.seconds)
        for r in range(args.repeat):
            session = ScoringSession(tl, backend, cache_dir=Path(tmp) / f"cache{r}", take_dir=tmp)
            session.select()
            t0 = time.perf_counter()
            session.generate(Settings(seed=100 * r, steps=args.steps))
            t1 = time.perf_counter()
            session.generate(Settings(seed=100 * r + 1, steps=args.steps))
            t2 = time.perf_counter()
            first.append(t1 - t0)
            again.append(t2 - t1)
    f, a = statistics.median(first), statistics.median(again)
    print(f"backend {backend.name}; {args.seconds:.0f} s selection, "
          f"{args.steps or backend.config.default_steps} steps, "
          f"{args.repeat} repeats")
    print(f"first scoring   median {f:6.2f} s  ({', '.join(f'{x:.2f}' for x in first)})")
    print(f"new seed        median {a:6.2f} s  ({', '.join(f'{x:.2f}' for x in again)})")
    print(f"new seed / first = {a / f:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
