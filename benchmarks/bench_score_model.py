"""End-to-end speed of ``diffv2m generate``: the score model beside the audio model.

    python benchmarks/bench_score_model.py [VIDEO] [--steps N] [--repeat 3] [--threads N]

Each run is a whole process (``python -m diffv2m generate VIDEO -o take.wav --model M``:
start-up, video features, semantic tokens, rhythm, sampling, decoding and, for the score
model, FluidSynth rendering at 48 kHz stereo and the WAV).  "first" runs use an empty feature
cache (``DIFFV2M_CACHE`` in a fresh temporary folder); "new seed" runs reuse the cache of a
first run, as an editor asking for another take from the command line does.  Prints the
medians, the ratio new-seed / first, and seconds of music per second of wall time; then the
same in one process with the runtime open (the panel's, Blender's and ``diffv2m score``'s
case: their scoring session keeps the video's conditions, and every take is a WAV written).  Default VIDEO:
examples/sample.mp4 (30 s).  The processes run as an installed copy does, with the modules'
bytecode cached (one uncounted warm-up run per model writes it); ``--no-bytecode`` keeps
``PYTHONDONTWRITEBYTECODE`` where the environment sets it (every process compiles ~40 modules
again, ~50 ms).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(video: Path, out: Path, model: str, seed: int, steps: int | None, cache: Path,
        threads: int | None, bytecode: bool = True) -> float:
    cmd = [sys.executable, "-m", "diffv2m", "generate", str(video), "-o", str(out), "--model",
           model, "--seed", str(seed), "-q"] + (["--steps", str(steps)] if steps else [])
    if threads:
        cmd += ["--threads", str(threads)]
    t0 = time.perf_counter()
    env = {**os.environ, "DIFFV2M_CACHE": str(cache)}
    if bytecode:                    # as an installed copy runs: modules' bytecode is cached
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if res.returncode:
        raise SystemExit(f"{model}: generate failed: {res.stderr.strip()[-400:]}")
    return dt


def session_times(video: Path, model: str, steps: int | None, repeat: int, threads: int | None) -> dict:
    """In one process with the runtime open, as the panel, Blender and ``diffv2m score`` run:
    :class:`diffv2m.plugin.session.ScoringSession` takes of the whole video, each written as
    a WAV.  A first take (features, semantic tokens, rhythm, sampling, decoding, rendering,
    the WAV) vs a new seed (the conditions reused: sampling, decoding, rendering, the WAV)."""
    from diffv2m import assets, synthesis
    from diffv2m.plugin.session import ScoringSession
    from diffv2m.runtime.ort import load_runtime
    backend = load_runtime(assets.model_onnx_dir(model), threads=threads)
    first, again, parts = [], [], {}
    for r in range(repeat):
        with tempfile.TemporaryDirectory(prefix="diffv2m-bench-session-") as tmp:
            session = ScoringSession(video, backend, cache_dir=Path(tmp) / "features",
                                     take_dir=tmp)
            t0 = time.perf_counter()
            session.generate(synthesis.Settings(seed=0, steps=steps))
            first.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            rec = session.generate(synthesis.Settings(seed=1 + r, steps=steps))
            again.append(time.perf_counter() - t0)
            parts = {k: round(v, 2) for k, v in rec.take.timings.items()}
    f, a = statistics.median(first), statistics.median(again)
    return {"first_s": round(f, 2), "new_seed_s": round(a, 2),
            "new_seed_over_first": round(a / f, 3), "parts": parts,
            "runs_first": [round(x, 2) for x in first],
            "runs_new_seed": [round(x, 2) for x in again]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("video", nargs="?", type=Path, default=ROOT / "examples" / "sample.mp4")
    p.add_argument("--steps", type=int, default=None,
                   help="sampler steps (default: each model's own, 15 score / 25 audio)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--models", nargs="+", default=["score", "audio"])
    p.add_argument("--warm-graphs", action="store_true",
                   help="first runs find onnxruntime's optimised graphs already cached (a new "
                        "video on a machine that has made takes before); default: an empty "
                        "cache, as the very first run after installing")
    p.add_argument("-o", "--output", type=Path, help="also write the figures as JSON")
    p.add_argument("--no-bytecode", action="store_true",
                   help="every process compiles the modules again (PYTHONDONTWRITEBYTECODE as "
                        "the environment has it); default: bytecode cached, as installed, "
                        "after one uncounted warm-up run per model")
    args = p.parse_args(argv)
    bytecode = not args.no_bytecode
    from diffv2m import media
    seconds = media.probe(args.video).duration
    load_before = [round(x, 2) for x in os.getloadavg()]    # the machine may be shared
    results = {}
    with tempfile.TemporaryDirectory(prefix="diffv2m-bench-") as tmp:
        tmp = Path(tmp)
        for model in args.models:
            first, again = [], []
            if bytecode or args.warm_graphs:                    # compiles, and is not counted
                run(args.video, tmp / f"{model}-warm.wav", model, 0, 1, tmp / "cache-warm",
                    args.threads)
            for r in range(args.repeat):
                cache = tmp / f"cache-{model}-{r}"
                if args.warm_graphs:
                    shutil.copytree(tmp / "cache-warm" / "ort", cache / "ort")
                first.append(run(args.video, tmp / f"{model}-{r}-a.wav", model, 0, args.steps,
                                 cache, args.threads, bytecode))
                again.append(run(args.video, tmp / f"{model}-{r}-b.wav", model, 1 + r,
                                 args.steps, cache, args.threads, bytecode))
            f, a = statistics.median(first), statistics.median(again)
            results[model] = {"first_s": round(f, 2), "new_seed_s": round(a, 2),
                              "new_seed_over_first": round(a / f, 3),
                              "realtime_first": round(seconds / f, 2),
                              "runs_first": [round(x, 2) for x in first],
                              "runs_new_seed": [round(x, 2) for x in again]}
            print(f"{model:>6}: {seconds:.0f} s of music  first {f:.2f} s  new seed {a:.2f} s  "
                  f"(ratio {a / f:.2f}, {seconds / f:.1f}x real time)", flush=True)
    in_process = {m: session_times(args.video, m, args.steps, args.repeat, args.threads)
                  for m in args.models}
    for m, r in in_process.items():
        print(f"{m:>6} in one process (the panel's case): first {r['first_s']:.2f} s  "
              f"new seed {r['new_seed_s']:.2f} s  (ratio {r['new_seed_over_first']:.2f})  "
              f"parts of a new seed: {r['parts']}", flush=True)
    summary = {"video": str(args.video), "seconds": seconds, "steps": args.steps,
               "in_process": in_process,
               "repeat": args.repeat, "cpu_count": os.cpu_count(),
               "loadavg_before": load_before, "bytecode_cached": bytecode,
               "first_runs_find_optimised_graphs": args.warm_graphs,
               "loadavg_after": [round(x, 2) for x in os.getloadavg()], "models": results}
    if args.output:
        args.output.write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
