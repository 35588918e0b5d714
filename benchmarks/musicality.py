"""Musicality figures of the corpus itself, the score renderer and the audio autoencoder.

    python benchmarks/musicality.py CORPUS_DIR [-o results.json] [--limit N] [--no-ae]

For every clip of a corpus built by ``diffv2m corpus build``, the clip's exact notes are
rebuilt from its piece and arrangement (``diffv2m.data.music``: the very MIDI events the
corpus rendered, on the clip's time base), then, with basic-pitch (ONNX Runtime) as judge:

* corpus audio (as built: FluidSynth, mono): confident-note frame fraction, and note-F1 of
  its transcription against the clip's notes;
* the clip's notes rendered by ``diffv2m.score.render`` (48 kHz stereo, -16 LUFS): the same
  two figures (the render round trip);
* the audio family's autoencoder round trip (the embedded model's ONNX encoder + decoder):
  note-F1 between the transcriptions of the corpus audio and of its reconstruction, and the
  reconstruction's confident-note fraction;
* MGEval-style symbolic measures: the test split's notes against the train split's, beside
  random notes on the same grid;
* render speed: 30 s of four tracks at 48 kHz, first call (SoundFont load) and warm (best of
  3), wall and process CPU time (the CPU figure is the one to read on a shared machine).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def clip_score(settings, rec: dict, plans: dict):
    """The exact notes of one corpus clip as a Score (times from the clip's start)."""
    from diffv2m.data import corpus, music
    from diffv2m.score.events import Ensemble, Note, Score
    index = int(rec["id"].split("-")[0])
    if index not in plans:
        plans[index] = corpus.plan_piece(settings, index, rec["piece"])
    plan = plans[index]
    piece, arr = plan.piece, plan.arrangement
    chans = [c for c in range(16) if c != 9]
    part_of = {chans[p % len(chans)]: p for p in range(piece.n_parts)}

    def track(ch: int) -> str:
        if ch == 9:
            return "drums"
        p = part_of.get(ch, 0)
        if p == 0:
            return "melody"
        return "bass" if p == piece.n_parts - 1 else "accompaniment"

    programs: dict[str, int] = {}
    for p, prog in enumerate(arr.programs):
        programs.setdefault(track(chans[p % len(chans)]), int(prog))
    sec_per_tick = arr.us_per_quarter / 1e6 / music.TPQ
    open_: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes = []
    T = float(rec["duration"])
    for tick, msg in music.midi_events(piece, arr):
        kind, ch = msg[0] & 0xF0, msg[0] & 0x0F
        t = tick * sec_per_tick - float(rec["start"])
        if kind == 0x90 and msg[2] > 0:
            open_.setdefault((ch, msg[1]), []).append((t, msg[2]))
        elif kind in (0x80, 0x90) and open_.get((ch, msg[1])):
            t0, vel = open_[(ch, msg[1])].pop(0)
            if 0 <= t0 < T and t > t0:
                notes.append(Note(track(ch), int(msg[1]), t0, min(t, T), int(vel)))
    notes.sort(key=lambda n: (n.start, n.pitch))
    return Score(notes, Ensemble(arr.ensemble, programs), T, tempo_bpm=60e6 / arr.us_per_quarter)


def mean(xs):
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("corpus", type=Path)
    p.add_argument("-o", "--out", type=Path)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--no-ae", action="store_true", help="skip the autoencoder round trip")
    args = p.parse_args(argv)

    from diffv2m.data.corpus import CorpusSettings
    from diffv2m.data.manifest import read_manifest
    from diffv2m.evaluate import symbolic
    from diffv2m.evaluate import transcription as T
    from diffv2m.media import read_audio
    from diffv2m.score import render

    reason = T.available()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    settings = CorpusSettings.from_dict(json.loads((args.corpus / "corpus.json").read_text()))
    clips = read_manifest(args.corpus / "manifest.jsonl", strict=False)
    if args.limit:
        clips = clips[: args.limit]
    backend = None
    if not args.no_ae:
        from diffv2m import assets
        from diffv2m.runtime.ort import load_runtime
        backend = load_runtime(assets.model_onnx_dir("audio"))   # the audio family's autoencoder
    plans: dict = {}
    rows, scores = [], {}
    t_start = time.perf_counter()
    for i, rec in enumerate(clips):
        score = clip_score(settings, rec, plans)
        scores[rec["id"]] = (rec["split"], score)
        audio = read_audio(rec["audio"], settings.sample_rate, mono=True)
        t_corpus = T.transcribe(audio, settings.sample_rate)
        y = render.render_score(score, sample_rate=48000)
        t_render = T.transcribe(y, 48000)
        row = {"id": rec["id"], "split": rec["split"], "piece": rec["piece"],
               "ensemble": rec["ensemble"], "drums": rec["drums"],
               "n_notes": len(score.notes),
               "corpus_confident": t_corpus.confident_note_fraction,
               "corpus_vs_notes_f1": T.render_round_trip(score.notes, t_corpus)["f1"],
               "render_confident": t_render.confident_note_fraction,
               "render_round_trip_f1": T.render_round_trip(score.notes, t_render)["f1"]}
        if backend is not None:
            x = np.ascontiguousarray(audio[None], np.float32)            # [1, 1, N]
            z = backend.encode_latent(x) / float(backend.config.latent_scale)
            recon = backend.decode(z)[0][:, : audio.shape[1]]
            t_ae = T.transcribe(recon, settings.sample_rate)
            row["ae_confident"] = t_ae.confident_note_fraction
            row["ae_round_trip_f1"] = T.transcription_f1(t_corpus, t_ae)["f1"]
        rows.append(row)
        print(f"[{i + 1}/{len(clips)}] {rec['id']} " + " ".join(
            f"{k}={v:.3f}" for k, v in row.items() if isinstance(v, float)), file=sys.stderr)

    test = [s for sp, s in scores.values() if sp == "test"]
    train = [s for sp, s in scores.values() if sp != "test"]
    sym = symbolic.mgeval_report(test, train, seed=0) if len(test) and len(train) >= 2 else \
        {"skipped": f"{len(test)} test and {len(train)} train clips"}
    # the controls on equal footing: one random half of all clips against the other, and
    # random notes shaped like the first half against the second
    rng = np.random.default_rng(0)
    allsc = [s for _, s in scores.values()]
    order = rng.permutation(len(allsc))
    half_a = [allsc[i] for i in order[: len(allsc) // 2]]
    half_b = [allsc[i] for i in order[len(allsc) // 2:]]
    halves = {"halves": symbolic.compare(half_a, half_b),
              "random_notes_like_half_a": symbolic.compare(
                  [symbolic.random_notes_like(s, rng) for s in half_a], half_b)}

    # render speed: 30 s of four tracks at 48 kHz (a corpus clip's notes, tiled three times)
    base = next(s for _, s in scores.values() if len(s.notes))
    from diffv2m.score.events import Note, Score
    tiled = Score([Note(n.track, n.pitch, n.start + k * base.duration, n.end + k * base.duration,
                        n.velocity) for k in range(3) for n in base.notes],
                  base.ensemble, 3 * base.duration, base.tempo_bpm)
    render._SYNTHS.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    render.render_score(tiled, sample_rate=48000)
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    warm, warm_cpu = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        render.render_score(tiled, sample_rate=48000)
        warm.append(time.perf_counter() - t0)
        warm_cpu.append(time.process_time() - c0)

    keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
    result = {
        "corpus": str(args.corpus), "clips": len(rows),
        "splits": {sp: sum(1 for r in rows if r["split"] == sp) for sp in ("train", "val", "test")},
        "summary": {k: mean(r.get(k) for r in rows) for k in keys},
        "symbolic_test_vs_train": sym,
        "symbolic_halves": halves,
        "by_ensemble": {e: {k: mean(r.get(k) for r in rows if r["ensemble"] == e)
                            for k in ("corpus_vs_notes_f1", "render_round_trip_f1",
                                      "render_confident")} | {
                            "clips": sum(1 for r in rows if r["ensemble"] == e)}
                        for e in sorted({r["ensemble"] for r in rows})},
        "render_speed_30s_4tracks_48k": {"first_s": first, "first_cpu_s": first_cpu,
                                         "warm_s": min(warm), "warm_cpu_s": min(warm_cpu),
                                         "notes": len(tiled.notes),
                                         "soundfont": render.find_soundfont()},
        "seconds": time.perf_counter() - t_start,
        "rows": rows,
    }
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(json.dumps({k: result[k] for k in ("clips", "splits", "summary", "by_ensemble",
                                             "render_speed_30s_4tracks_48k")}, indent=1))
    print("symbolic mean OA, halves: %.3f; random notes like one half vs the other: %.3f" % (
        halves["halves"].get("mean_oa") or 0,
        halves["random_notes_like_half_a"].get("mean_oa") or 0))
    if isinstance(sym, dict) and "model" in sym:
        print("symbolic mean OA: test-vs-train %.3f, random notes %.3f, held-out halves %.3f" % (
            sym["model"]["mean_oa"] or 0, sym["random_notes"]["mean_oa"] or 0,
            sym["held_out_halves"]["mean_oa"] or 0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
