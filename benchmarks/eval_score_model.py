"""Held-out figures of the score model (issue 13's acceptance, the part measurable without the
transcriber), on ONNX Runtime:

    python benchmarks/eval_score_model.py CORPUS/manifest.jsonl -o runs/eval_score
        [--onnx-dir D] [--split test] [--steps N] [--limit N] [--style-clips 12]

* rhythm: every clip's take (seed 0, the clip's own class) goes through ``diffv2m evaluate``
  (onset-on-cut hit rate vs the random-shift baseline, clips above it);
* seeds differ: note-F1 (50 ms onsets, same pitch) between the notes of seeds 0 and 1 (all
  notes, and pitched notes only: drum hits on the cuts are meant to agree);
* same seed, same bytes: seed 0 generated twice on the first clip, MIDI and WAV compared;
* mode: major/minor of the generated pitched notes (the corpus's key finding) vs the clip's;
* style: the first ``--style-clips`` clips generated with ``--style`` 0, 1 and 2 (seed 0):
  onsets per second (all tracks, and pitched only) and median inter-onset interval, which
  should rise (density) / fall (IOI) from calm to energetic, as the corpus's classes do;
* the corpus's own scores of those clips, for the same statistics.

Writes ``OUT/takes`` (WAV + MIDI + predicted ODF), ``OUT/report.json`` (``diffv2m evaluate``)
and ``OUT/score_figures.json``; prints the headline figures.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np


def density(notes, seconds: float, pitched: bool = False) -> float:
    starts = {round(n.start, 4) for n in notes if not (pitched and n.track == "drums")}
    return len(starts) / max(seconds, 1e-9)


def median_ioi(notes) -> float:
    t = np.unique(np.round([n.start for n in notes], 4))
    return float(np.median(np.diff(t))) if len(t) > 2 else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("manifest", type=Path)
    p.add_argument("-o", "--out", type=Path, required=True)
    p.add_argument("--onnx-dir", help="exported graphs (default: the embedded score model's)")
    p.add_argument("--split", default="test")
    p.add_argument("--steps", type=int, default=None, help="default: the model's own")
    p.add_argument("--cfg", type=float, default=None, help="default: the model's")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--style-clips", type=int, default=12)
    args = p.parse_args(argv)

    from diffv2m import assets, jobs, synthesis
    from diffv2m.data.manifest import read_manifest
    from diffv2m.data.scores import clip_roll_file, load_score
    from diffv2m.evaluate.note_f1 import note_f1
    from diffv2m.runtime.ort import load_runtime
    from diffv2m.score.take import midi_file_bytes, notes_mode
    backend = load_runtime(args.onnx_dir or assets.model_onnx_dir("score"))
    if args.cfg is None:
        args.cfg = backend.config.default_cfg_scale
    clips = [c for c in read_manifest(args.manifest, strict=False) if c.get("split") == args.split]
    if args.limit:
        clips = clips[: args.limit]
    takes = args.out / "takes"
    takes.mkdir(parents=True, exist_ok=True)
    cache = args.out / "cache"
    rows = []
    t0 = time.perf_counter()
    for c in clips:
        cls = int(c.get("cls", 1))
        got = {}
        for seed in (0, 1):
            out = takes / f"{c['id']}.take-{seed}.wav"
            take = jobs.generate_file(backend, c["video"], out,
                                      settings=synthesis.Settings(seed=seed, steps=args.steps, cls=cls,
                                                                  cfg_scale=args.cfg),
                                      model_id=backend.model_id, cache_dir=cache)
            if seed == 0:
                np.save(takes / f"{c['id']}.take-0.odf.npy", take.conditions.odf)
                (takes / f"{c['id']}.take-0.mid").write_bytes(midi_file_bytes(take.score))
            else:
                out.unlink()                       # only seed 0 goes to the rhythm metrics
            got[seed] = take.score
        ref, _ = load_score(clip_roll_file(c))
        rows.append({"id": c["id"], "cls": cls, "mode": c.get("mode"),
                     "generated_mode": notes_mode(got[0].notes),
                     "reference_mode_from_notes": notes_mode(ref.notes),
                     "seed_note_f1": note_f1(got[1].notes, got[0].notes)["f1"],
                     "seed_note_f1_pitched": note_f1(got[1].notes, got[0].notes,
                                                     pitched_only=True)["f1"],
                     "notes": len(got[0].notes), "ensemble": got[0].ensemble.name,
                     "density": density(got[0].notes, got[0].duration),
                     "reference_density": density(ref.notes, ref.duration)})
        print(f"{c['id']}: {rows[-1]['notes']} notes, mode {rows[-1]['generated_mode']} "
              f"(clip {c.get('mode')}), seed F1 {rows[-1]['seed_note_f1']:.2f}", flush=True)
    gen_s = time.perf_counter() - t0

    # same seed twice -> same bytes
    c = clips[0]
    sha = []
    for k in range(2):
        out = args.out / f"repeat{k}.wav"
        take = jobs.generate_file(backend, c["video"], out,
                                  settings=synthesis.Settings(seed=0, steps=args.steps,
                                                              cls=int(c.get("cls", 1)),
                                                              cfg_scale=args.cfg),
                                  model_id=backend.model_id, cache_dir=cache)
        sha.append((hashlib.sha256(out.read_bytes()).hexdigest(),
                    hashlib.sha256(midi_file_bytes(take.score)).hexdigest()))

    # style classes
    style = {s: {"density": [], "pitched_density": [], "ioi": []} for s in (0, 1, 2)}
    ref_style = {s: {"density": [], "pitched_density": [], "ioi": []} for s in (0, 1, 2)}
    for c in clips[: args.style_clips]:
        conditions = None
        for s in (0, 1, 2):
            settings = synthesis.Settings(seed=0, steps=args.steps, cls=s, cfg_scale=args.cfg)
            conditions = jobs.video_conditions(backend, _source(c["video"]), cls=s,
                                               cache_dir=cache)
            take = synthesis.synthesise(backend, conditions, settings)
            n, d = take.score.notes, take.score.duration
            style[s]["density"].append(density(n, d))
            style[s]["pitched_density"].append(density(n, d, pitched=True))
            style[s]["ioi"].append(median_ioi(n))
    for c in clips:
        ref, _ = load_score(clip_roll_file(c))
        s = int(c.get("cls", 1))
        ref_style[s]["density"].append(density(ref.notes, ref.duration))
        ref_style[s]["pitched_density"].append(density(ref.notes, ref.duration, pitched=True))
        ref_style[s]["ioi"].append(median_ioi(ref.notes))

    from diffv2m.cli import main as cli
    rc = cli(["evaluate", "--generated", str(takes), "--manifest", str(args.manifest),
              "-o", str(args.out / "report.json"), "-q"])
    report = json.loads((args.out / "report.json").read_text()) if rc == 0 else {}
    al = report.get("summary", {}).get("alignment", {})

    def mean(x):
        x = [v for v in x if v == v]
        return float(np.mean(x)) if x else float("nan")

    figures = {
        "clips": len(clips), "backend": backend.name,
        "steps": args.steps or backend.config.default_steps, "cfg": args.cfg,
        "generation_seconds": round(gen_s, 1),
        "onset_cut_hit_rate": al.get("onset_cut_hit_rate"),
        "shift_baseline_mean": al.get("shift_baseline_mean"),
        "clips_above_baseline": al.get("clips_above_baseline"),
        "clips_paired": al.get("clips_paired"),
        "reference_onset_cut_hit_rate":
            report.get("summary", {}).get("reference_alignment", {}).get("onset_cut_hit_rate"),
        "seed_note_f1_mean": mean([r["seed_note_f1"] for r in rows]),
        "seed_note_f1_max": max(r["seed_note_f1"] for r in rows),
        "seed_note_f1_pitched_mean": mean([r["seed_note_f1_pitched"] for r in rows]),
        "mode_match": mean([float(r["generated_mode"] == r["mode"]) for r in rows]),
        "reference_mode_match_from_notes":
            mean([float(r["reference_mode_from_notes"] == r["mode"]) for r in rows]),
        "same_seed_same_wav": sha[0][0] == sha[1][0],
        "same_seed_same_midi": sha[0][1] == sha[1][1],
        "style_generated": {s: {k: mean(v) for k, v in d.items()} for s, d in style.items()},
        "style_corpus": {s: {k: mean(v) for k, v in d.items()} for s, d in ref_style.items()},
        "notes_per_take_mean": mean([r["notes"] for r in rows]),
        "density_generated_mean": mean([r["density"] for r in rows]),
        "density_corpus_mean": mean([r["reference_density"] for r in rows]),
        "rows": rows,
    }
    (args.out / "score_figures.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps({k: v for k, v in figures.items() if k != "rows"}, indent=1))
    return 0


def _source(video):
    from diffv2m import media
    return media.FileFrameSource(video)


if __name__ == "__main__":
    sys.exit(main())
