"""``diffv2m evaluate``: score generated music against reference music and the videos.

Files are paired by name: a generated ``NAME.wav`` (or ``NAME.take-SEED.wav``, ``.flac`` too)
goes with the reference ``NAME.wav`` in ``--reference`` and the video ``NAME.mp4`` (``.mov``,
``.mkv``, ``.m4v``, ``.webm``) in ``--videos``; with ``--manifest`` (a corpus ``manifest.jsonl``)
the clip ``id`` gives the name and its ``video``/``audio`` fields the files, and its
``cut_times`` are scored as annotated cuts.  For each generated take:

* alignment: music onsets and beats (``diffv2m.features.rhythm``) against the cuts detected in
  the decoded video (``diffv2m.features.cuts_motion``): onset/cut hit rate with its random-shift
  baseline, and BCS/BHS of music beats against visual beats (cuts + motion peaks); the same
  numbers for the reference music, as the level the real soundtrack reaches;
* rhythm: when ``NAME[.take-SEED].odf.npy`` lies beside the take, the predicted per-second ODF
  against the reference music's ODF, next to the motion/cut heuristic baseline;
* reconstruction (``--recon``): MR-STFT, mel distance and SI-SDR of take vs reference;
* musicality (``--musicality``, on by itself when a take has a MIDI sidecar
  ``NAME[.take-SEED].mid``, i.e. comes from the score family): basic-pitch's transcription
  (``diffv2m.evaluate.transcription``, ONNX Runtime) gives the confident-note frame fraction
  of the take and of its reference music; with a MIDI sidecar, the note-F1 between the take's
  own notes and the transcription of its audio (render round trip); with ``--recon``, the
  note-F1 between the transcriptions of reference and take (the autoencoder round trip).

Across the set: Fréchet distance, density/coverage and chroma KL between generated and
reference embeddings; with MIDI sidecars and held-out scores (``--reference-scores DIR`` of
``.mid`` files, else ``NAME.mid`` beside each reference), the MGEval-style symbolic measures
(``diffv2m.evaluate.symbolic``) beside a random-notes control and the held-out music itself.
The JSON is written atomically; ``--html`` adds a report with plots.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..errors import UserError
from . import alignment, distribution, embeddings, rhythm_metrics

AUDIO_SUFFIXES = (".wav", ".flac")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v", ".webm")
MIDI_SUFFIXES = (".mid", ".midi")
TAKE_RE = re.compile(r"^(?P<name>.+?)\.take-(?P<seed>[^.]+)$")
REPORT_VERSION = 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffv2m evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--generated", required=True, type=Path, help="folder of generated WAV/FLAC takes")
    p.add_argument("--reference", type=Path, help="folder of reference music NAME.wav")
    p.add_argument("--videos", type=Path, help="folder of videos NAME.mp4")
    p.add_argument("--manifest", type=Path, help="corpus manifest.jsonl (id, video, audio, cut_times)")
    p.add_argument("-o", "--output", required=True, type=Path, help="report JSON path")
    p.add_argument("--html", type=Path, help="also write an HTML report with plots")
    p.add_argument("--embedding", default=embeddings.DEFAULT_EMBEDDING,
                   help=f"audio embedding for the distribution metrics (default {embeddings.DEFAULT_EMBEDDING})")
    p.add_argument("--embedding-weights", type=Path, help="local weights file for --embedding")
    p.add_argument("--tol", type=float, default=alignment.DEFAULT_TOL,
                   help="alignment tolerance in seconds (default 0.1)")
    p.add_argument("--shifts", type=int, default=200, help="random shifts for the baseline (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random shifts (default 0)")
    p.add_argument("--k", type=int, default=5, help="k of density/coverage (default 5)")
    p.add_argument("--sr", type=int, default=22050, help="analysis sample rate (default 22050)")
    p.add_argument("--analysis-fps", type=float, default=None,
                   help="video analysis rate for cuts/motion (default: native frames)")
    p.add_argument("--recon", action="store_true",
                   help="also compute reconstruction metrics of each take against its reference")
    p.add_argument("--musicality", action="store_true",
                   help="basic-pitch transcription metrics for every take (on by itself when "
                        "takes have MIDI sidecars)")
    p.add_argument("--reference-scores", type=Path,
                   help="folder of held-out scores (.mid) for the symbolic measures")
    p.add_argument("--html-clips", type=int, default=8, help="clips plotted in the HTML (default 8)")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


# ----------------------------------------------------------------------------- pairing
@dataclass
class Clip:
    name: str
    take: str | None
    generated: Path
    reference: Path | None = None
    video: Path | None = None
    odf: Path | None = None
    annotated_cuts: list[float] | None = None
    midi: Path | None = None                  # the take's own notes (score family)
    reference_midi: Path | None = None        # the reference music's notes
    mode: str | None = None                   # the clip's mode / style class (manifest)
    cls: int | None = None


@dataclass
class ClipPlot:
    """What the HTML report draws for one take (not stored in the JSON)."""
    label: str
    audio: np.ndarray
    sr: int
    cut_times: np.ndarray
    onsets: np.ndarray
    odf_curves: dict = field(default_factory=dict)


def _dir(path: Path | None, what: str) -> Path | None:
    if path is None:
        return None
    if not path.is_dir():
        raise UserError(f"{path}: {what} is not a folder")
    return path


def _find(folder: Path | None, name: str, suffixes) -> Path | None:
    if folder is None:
        return None
    for s in suffixes:
        for cand in (folder / f"{name}{s}", folder / f"{name}{s.upper()}"):
            if cand.is_file():
                return cand
    return None


def _read_manifest(path: Path) -> dict[str, dict]:
    from ..data.manifest import json_lines
    out: dict[str, dict] = {}
    for where, rec in json_lines(path):
        if "id" not in rec:
            raise UserError(f"{where}: clip has no 'id'")
        for key in ("video", "audio"):
            if rec.get(key):
                rec[key] = (path.parent / rec[key]).resolve()
        out[str(rec["id"])] = rec
    return out


def pair_files(generated: Path, reference: Path | None, videos: Path | None,
               manifest: dict[str, dict] | None = None) -> tuple[list[Clip], list[str]]:
    """Generated takes paired with reference music and videos; also the unpaired names."""
    files = sorted(p for p in generated.iterdir()
                   if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise UserError(f"{generated}: no generated .wav or .flac files")
    clips, unpaired = [], []
    for f in files:
        m = TAKE_RE.match(f.stem)
        name, take = (m["name"], m["seed"]) if m else (f.stem, None)
        rec = (manifest or {}).get(name, {})
        ref = _find(reference, name, AUDIO_SUFFIXES)
        if ref is None and rec.get("audio") and Path(rec["audio"]).is_file():
            ref = Path(rec["audio"])
        vid = _find(videos, name, VIDEO_SUFFIXES)
        if vid is None and rec.get("video") and Path(rec["video"]).is_file():
            vid = Path(rec["video"])
        odf = f.with_name(f.stem + ".odf.npy")
        if not odf.is_file():
            odf = f.with_name(name + ".odf.npy")
        cuts = rec.get("cut_times")
        mid = _find(f.parent, f.stem, MIDI_SUFFIXES)
        ref_mid = (_find(reference, name, MIDI_SUFFIXES)
                   or (_find(ref.parent, ref.stem, MIDI_SUFFIXES) if ref is not None else None))
        clip = Clip(name, take, f, ref, vid, odf if odf.is_file() else None,
                    [float(c) for c in cuts] if cuts is not None else None, mid, ref_mid,
                    rec.get("mode"), int(rec["cls"]) if rec.get("cls") is not None else None)
        if vid is None and ref is None:
            unpaired.append(f.name)
        clips.append(clip)
    return clips, unpaired


# ----------------------------------------------------------------------------- analysis
def analyse_video(path: Path, fps: float | None = None) -> dict:
    """Cuts, motion curve and per-second cues of a video (streaming, small frames)."""
    from ..features import cuts_motion
    from ..media import iter_frames, probe

    info = probe(path)
    if not info.has_video:
        raise UserError(f"{path}: no video stream")
    an = cuts_motion.FrameAnalyser()
    w, h = info.display_width or 64, info.display_height or 64
    scale = 96.0 / max(w, h, 1)
    size = (max(2, int(round(w * scale)) // 2 * 2), max(2, int(round(h * scale)) // 2 * 2))
    for t, frame in iter_frames(path, fps=fps, size=size, info=info):
        an.push(t, frame)
    times, diffs, motion = an.times, an.differences, an.motion
    cuts = cuts_motion.cuts_from_differences(times, diffs)
    T = max(1, int(math.ceil(info.duration - 1e-9)))
    return {"duration": float(info.duration), "cuts": cuts, "motion_curve": (times, motion),
            "seconds": T, "motion_per_second": cuts_motion.pseudo_beat(times, motion, T, cuts),
            "cut_indicator": cuts_motion.cut_indicator(cuts, T)}


def read_music(path: Path, sr: int) -> np.ndarray:
    from ..media import read_audio
    return read_audio(path, sr, mono=True)[0]


def music_events(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    from ..features import rhythm
    return rhythm.onset_times(y, sr), rhythm.beat_times(y, sr)


def alignment_scores(onsets, beats, duration, cuts, vbeats, args, seed) -> dict:
    base = alignment.random_shift_baseline(onsets, cuts, duration, tol=args.tol,
                                           n_shifts=args.shifts, seed=seed)
    return {"onset_cut_hit_rate": _clean(base),
            "beats": _clean(alignment.beat_scores(beats, vbeats, args.tol)),
            "n_onsets": int(len(onsets)), "n_beats": int(len(beats)), "n_cuts": int(len(cuts))}


def _clean(x):
    """JSON-safe copy: NaN/inf -> None, numpy -> Python, a dataclass -> its fields' dict."""
    if is_dataclass(x) and not isinstance(x, type):
        return _clean(asdict(x))
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def _mean(values) -> float | None:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else None


def _summary(rows: list[dict]) -> dict:
    def get(row, *keys):
        for k in keys:
            if not isinstance(row, dict) or k not in row:
                return None
            row = row[k]
        return row

    out: dict = {"clips": len(rows)}
    for who in ("alignment", "reference_alignment"):
        al = [r.get(who) for r in rows if r.get(who)]
        if not al:
            continue
        hr = [get(a, "onset_cut_hit_rate", "observed") for a in al]
        ps = [get(a, "onset_cut_hit_rate", "p_value") for a in al]
        out[who] = {
            "onset_cut_hit_rate": _mean(hr),
            "shift_baseline_mean": _mean(get(a, "onset_cut_hit_rate", "mean") for a in al),
            "z": _mean(get(a, "onset_cut_hit_rate", "z") for a in al),
            "share_significant_p05": _mean(float(p < 0.05) for p in ps if p is not None),
            **paired_over_clips(hr, [get(a, "onset_cut_hit_rate", "mean") for a in al]),
            "bcs": _mean(get(a, "beats", "bcs") for a in al),
            "bhs": _mean(get(a, "beats", "bhs") for a in al),
            "beat_f1": _mean(get(a, "beats", "f1") for a in al)}
    rh = [r["rhythm"] for r in rows if r.get("rhythm")]
    if rh:
        out["rhythm"] = {who: {m: _mean(get(x, who, m) for x in rh)
                               for m in ("mae", "rmse", "pearson", "peak_f1")}
                         for who in ("predictor", "motion_baseline")
                         if any(who in x for x in rh)}
    rc = [r["recon"] for r in rows if r.get("recon")]
    if rc:
        out["recon"] = {m: _mean(x.get(m) for x in rc) for m in rc[0]}
    mu = [r["musicality"] for r in rows if r.get("musicality")]
    if mu:
        out["musicality"] = {
            "confident_note_fraction": _mean(m.get("confident_note_fraction") for m in mu),
            "reference_confident_note_fraction": _mean(
                m.get("reference_confident_note_fraction") for m in mu),
            "render_round_trip_note_f1": _mean(get(m, "render_round_trip", "f1") for m in mu),
            "reference_vs_take_note_f1": _mean(get(m, "reference_vs_take", "f1") for m in mu),
            "takes": len(mu),
            "takes_with_midi": sum(1 for m in mu if m.get("render_round_trip"))}
    sc = [r["score"] for r in rows if r.get("score")]
    if sc:
        matches = [float(x["mode_match"]) for x in sc if "mode_match" in x]
        out["score"] = {
            "takes": len(sc), "mode_match_rate": _mean(matches), "mode_compared": len(matches),
            "note_density": _mean(x["note_density"] for x in sc),
            "by_class": {str(c): {"takes": sum(1 for x in sc if x["cls"] == c),
                                  "note_density": _mean(x["note_density"] for x in sc
                                                        if x["cls"] == c),
                                  "tempo_bpm": _mean(x["tempo_bpm"] for x in sc
                                                     if x["cls"] == c)}
                         for c in sorted({x["cls"] for x in sc if x["cls"] is not None})}}
    return out


def paired_over_clips(observed, baseline) -> dict:
    """The whole set's test: per clip, hit rate vs its own random-shift mean; how many clips
    beat their baseline and the one-sided Wilcoxon signed-rank p-value (observed > baseline)."""
    pairs = [(o, b) for o, b in zip(observed, baseline) if o is not None and b is not None]
    out = {"clips_above_baseline": sum(o > b for o, b in pairs), "clips_paired": len(pairs)}
    diffs = [o - b for o, b in pairs if o != b]
    if len(diffs) >= 5:
        from scipy.stats import wilcoxon
        out["wilcoxon_p"] = float(wilcoxon(diffs, alternative="greater").pvalue)
    return out


def run(args, progress=print) -> tuple[dict, list[ClipPlot]]:
    generated = _dir(args.generated, "--generated")
    reference = _dir(args.reference, "--reference")
    videos = _dir(args.videos, "--videos")
    manifest = _read_manifest(args.manifest) if args.manifest else None
    if videos is None and manifest is None:
        raise UserError("evaluate needs --videos DIR or --manifest MANIFEST to find the videos")
    for name, v in (("--tol", args.tol), ("--sr", args.sr)):
        if not v > 0:
            raise UserError(f"{name} must be positive, not {v}")
    if args.shifts < 1 or args.k < 1:
        raise UserError("--shifts and --k must be at least 1")
    emb = embeddings.get_embedding(args.embedding, args.embedding_weights)
    clips, unpaired = pair_files(generated, reference, videos, manifest)
    if not any(c.video for c in clips) and not any(c.reference for c in clips):
        raise UserError(f"{generated}: no generated file has a matching video or reference")

    sr = int(args.sr)
    video_cache: dict[Path, dict] = {}
    ref_cache: dict[Path, dict] = {}
    rows, plots = [], []
    gen_emb, ref_emb, pair_idx = [], [], []
    ref_audio: tuple[Path | None, np.ndarray] = (None, np.zeros(0, np.float32))
    plot_limit = max(0, args.html_clips) if getattr(args, "html", None) else 0
    recon_mod = None
    recon_note = None
    if args.recon:
        try:
            from . import recon_metrics as recon_mod  # noqa: F811 (lazy, written separately)
        except ImportError:
            recon_note = "diffv2m.evaluate.recon_metrics is not available"
    judge, musicality_note = musicality_judge(args, clips)
    ref_transcripts: dict[Path, object] = {}
    gen_scores, ref_scores = [], {}

    for i, clip in enumerate(clips):
        progress(f"[{i + 1}/{len(clips)}] {clip.generated.name}")
        y = read_music(clip.generated, sr)
        row: dict = {"name": clip.name, "take": clip.take, "generated": str(clip.generated),
                     "reference": str(clip.reference) if clip.reference else None,
                     "video": str(clip.video) if clip.video else None,
                     "duration": len(y) / sr}
        onsets, beats = music_events(y, sr)
        gen_emb.append(emb.embed(y, sr))
        ref = None
        if clip.reference is not None:
            if clip.reference not in ref_cache:
                ry = read_music(clip.reference, sr)
                ro, rb = music_events(ry, sr)
                ref_cache[clip.reference] = {"onsets": ro, "beats": rb, "n": len(ry),
                                             "emb": emb.embed(ry, sr), "index": len(ref_cache)}
                ref_audio = (clip.reference, ry)
            elif ref_audio[0] != clip.reference:     # keep one reference's samples in memory
                ref_audio = (clip.reference, read_music(clip.reference, sr))
            ref = dict(ref_cache[clip.reference], y=ref_audio[1])
            pair_idx.append((len(gen_emb) - 1, ref["index"]))
        plot = ClipPlot(f"{clip.name}" + (f" take {clip.take}" if clip.take else ""),
                        y, sr, np.zeros(0), onsets)
        seed = args.seed * 1_000_003 + i
        if clip.video is not None:
            if clip.video not in video_cache:
                video_cache[clip.video] = analyse_video(clip.video, args.analysis_fps)
            va = video_cache[clip.video]
            cuts = va["cuts"]
            vb = alignment.visual_beats(cuts, va["motion_curve"])
            row["video_duration"] = va["duration"]
            row["cut_times"] = _clean(cuts)
            dur = max(len(y) / sr, 1e-3)
            row["alignment"] = alignment_scores(onsets, beats, dur, cuts, vb, args, seed)
            if ref is not None:
                row["reference_alignment"] = alignment_scores(
                    ref["onsets"], ref["beats"], max(ref["n"] / sr, 1e-3), cuts, vb, args, seed)
            if clip.annotated_cuts is not None:
                row["annotated_cuts"] = _clean(alignment.random_shift_baseline(
                    onsets, clip.annotated_cuts, dur, tol=args.tol, n_shifts=args.shifts,
                    seed=seed))
            plot.cut_times = cuts
        if clip.odf is not None:
            from ..features import rhythm
            try:
                pred = np.load(clip.odf).astype(np.float64).reshape(-1)
            except (OSError, ValueError) as exc:
                raise UserError(f"{clip.odf}: cannot read ODF sidecar ({exc})") from None
            T = len(pred)
            plot.odf_curves["predicted"] = rhythm_metrics.odf_normalise(pred)
            gen_odf = rhythm.odf_lowres(y, sr, seconds=T)
            plot.odf_curves["generated music"] = rhythm_metrics.odf_normalise(gen_odf)
            row["predicted_vs_generated_odf"] = _clean(rhythm_metrics.odf_metrics(pred, gen_odf))
            if ref is not None:
                gt = rhythm.odf_lowres(ref["y"], sr, seconds=T)
                va = video_cache.get(clip.video) if clip.video else None
                res = rhythm_metrics.evaluate_rhythm(
                    pred, gt, va["motion_per_second"][:T] if va else None,
                    va["cut_indicator"][:T] if va else None)
                row["rhythm"] = _clean(res)
                plot.odf_curves["reference (ground truth)"] = rhythm_metrics.odf_normalise(gt)
                if va:
                    plot.odf_curves["motion/cut baseline"] = rhythm_metrics.motion_baseline_odf(
                        va["motion_per_second"][:T], va["cut_indicator"][:T])
        if recon_mod is not None and ref is not None:
            n = min(len(y), len(ref["y"]))
            row["recon"] = {"mrstft": recon_mod.mrstft_distance(ref["y"][:n], y[:n]),
                            "mel_distance": recon_mod.mel_distance(ref["y"][:n], y[:n], sr),
                            "si_sdr_db": recon_mod.si_sdr(ref["y"][:n], y[:n])}
        if clip.midi is not None:
            from ..score.midi import read_midi
            gen_scores.append(read_midi(clip.midi))
            row["midi"] = str(clip.midi)
            row["score"] = score_row(gen_scores[-1], clip)
        if clip.reference_midi is not None and clip.reference_midi not in ref_scores:
            from ..score.midi import read_midi
            ref_scores[clip.reference_midi] = read_midi(clip.reference_midi)
        if judge is not None:
            row["musicality"] = musicality_row(judge, clip, y, sr, ref, ref_transcripts,
                                               gen_scores[-1] if clip.midi else None,
                                               bool(args.recon))
        rows.append(row)
        if len(plots) < plot_limit:                  # the HTML draws only the first few
            plots.append(plot)

    dist = distribution_section(np.stack(gen_emb),
                                np.stack([r["emb"] for r in sorted(ref_cache.values(),
                                                                   key=lambda r: r["index"])])
                                if ref_cache else None, pair_idx, emb, args.k)
    report = {
        "report_version": REPORT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "embedding": embedding_section(emb),
        "settings": {"tol_s": args.tol, "shifts": args.shifts, "seed": args.seed, "k": args.k,
                     "analysis_sr": sr, "analysis_fps": args.analysis_fps,
                     "generated": str(generated), "reference": str(reference) if reference else None,
                     "videos": str(videos) if videos else None,
                     "manifest": str(args.manifest) if args.manifest else None},
        "definitions": DEFINITIONS,
        "summary": _clean(_summary(rows)),
        "distribution": _clean(dist),
        "clips": _clean(rows),
        "unpaired": unpaired,
    }
    if recon_note:
        report["recon_note"] = recon_note
    if musicality_note:
        report["musicality_note"] = musicality_note
    if gen_scores:
        report["symbolic"] = _clean(symbolic_section(gen_scores, args, list(ref_scores.values())))
        seeds = between_seeds(rows, gen_scores)
        if seeds is not None:
            report["summary"].setdefault("score", {})["between_seeds"] = _clean(seeds)
    return report, plots


def score_row(score, clip) -> dict:
    """Mood and density of a take's own notes: mode (Krumhansl-Schmuckler, as the corpus
    labels its clips) against the clip's, distinct pitched onsets per second, tempo."""
    from ..score.key import key_mode
    pitched = [n for n in score.notes if n.track != "drums"]
    out: dict = {"pitched_notes": len(pitched), "tempo_bpm": score.tempo_bpm,
                 "clip_mode": clip.mode, "cls": clip.cls}
    dur = max(score.duration, 1e-3)
    out["note_density"] = len({round(n.start, 2) for n in pitched}) / dur
    if pitched:
        out["mode"] = key_mode(np.array([n.pitch for n in pitched]),
                               np.array([n.end - n.start for n in pitched]))
        if clip.mode:
            out["mode_match"] = out["mode"] == clip.mode
    return out


def between_seeds(rows, gen_scores) -> dict | None:
    """Mean note-F1 (50 ms onsets, pitched notes) between the takes of different seeds of
    the same clip, from their MIDI sidecars; None when no clip has two such takes."""
    by_clip: dict[str, list] = {}
    scores = iter(gen_scores)
    for r in rows:
        if r.get("midi"):
            by_clip.setdefault(r["name"], []).append(next(scores))
    pairs = [(a, b) for takes in by_clip.values() for i, a in enumerate(takes)
             for b in takes[i + 1:]]
    if not pairs:
        return None
    try:
        from .note_f1 import intervals_f1
        from .transcription import score_notes
        f1 = [intervals_f1(*score_notes(a.notes), *score_notes(b.notes))["f1"] for a, b in pairs]
    except ImportError as exc:                    # mir_eval is in the 'eval' extra
        return {"skipped": f"note-F1 needs mir_eval ({exc})"}
    return {"note_f1": _mean(f1), "pairs": len(pairs),
            "clips": sum(1 for t in by_clip.values() if len(t) > 1)}


def musicality_judge(args, clips):
    """The transcription module when the musicality metrics run, else None, and a note."""
    wanted = bool(getattr(args, "musicality", False))
    auto = any(c.midi is not None for c in clips)
    if not (wanted or auto):
        return None, None
    from . import transcription
    reason = transcription.available()
    if reason is not None:
        if wanted:
            raise UserError(f"--musicality: {reason}")
        return None, f"musicality metrics skipped: {reason}"
    return transcription, None


def musicality_row(judge, clip, y, sr, ref, ref_transcripts, score, recon: bool) -> dict:
    """basic-pitch figures of one take (see the module docstring)."""
    tr = judge.transcribe(y, sr)
    out: dict = {"confident_note_fraction": tr.confident_note_fraction,
                 "n_transcribed_notes": int(len(tr.pitches))}
    if score is not None:
        out["render_round_trip"] = judge.render_round_trip(score.notes, tr)
    if ref is not None:
        if clip.reference not in ref_transcripts:
            ref_transcripts[clip.reference] = judge.transcribe(ref["y"], sr)
        rt = ref_transcripts[clip.reference]
        out["reference_confident_note_fraction"] = rt.confident_note_fraction
        if recon:
            out["reference_vs_take"] = judge.transcription_f1(rt, tr)
    return out


def symbolic_section(gen_scores, args, paired_refs) -> dict:
    """MGEval-style measures of the takes' notes against held-out scores."""
    from . import symbolic
    from ..score.midi import read_midi
    folder = _dir(getattr(args, "reference_scores", None), "--reference-scores")
    refs = ([read_midi(p) for p in sorted(folder.iterdir())
             if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES] if folder else paired_refs)
    if len(refs) < 2:
        return {"skipped": f"needs at least 2 held-out scores (.mid), found {len(refs)}; "
                           "pass --reference-scores DIR"}
    return {"source": str(folder) if folder else "reference MIDI beside the reference audio",
            **symbolic.mgeval_report(gen_scores, refs, seed=args.seed)}


DEFINITIONS = {
    "onset_cut_hit_rate": "share of detected video cuts with a music onset within tol_s; "
                          "baseline: the same onsets circularly shifted by `shifts` random "
                          "offsets (mean, std, z, one-sided empirical p-value)",
    "bcs": "beats coverage score = aligned music beats / music beats (LORIS code form)",
    "bhs": "beats hit score = aligned music beats / visual beats (cuts + motion peaks)",
    "coverage_ratio": "music beats / visual beats (CMT's original coverage)",
    "rhythm": "predicted per-second ODF vs the reference music's ODF (both scaled to [0, 1]): "
              "MAE, RMSE, Pearson r, peak F1; motion_baseline = normalised motion + cut per second",
    "frechet_distance": "Fréchet distance between Gaussian fits of generated and reference embeddings",
    "density_coverage": "Naeem et al. 2020, k-NN balls around reference embeddings",
    "chroma_kl": "KL(reference || generated) of 12-bin mean-chroma profiles, per pair and of set means",
    "confident_note_fraction": "basic-pitch (ICASSP 2022 nmp.onnx on ONNX Runtime): share of its "
                               "frames (~86/s) whose largest note posterior exceeds 0.5",
    "render_round_trip": "note-F1 (mir_eval, onsets within 50 ms, same pitch, offsets ignored) "
                         "between the take's own pitched notes (MIDI sidecar, drums left out) "
                         "and basic-pitch's transcription of the take's audio",
    "reference_vs_take": "note-F1 as above between the transcriptions of the reference music and "
                         "of the take (with --recon: the autoencoder round trip)",
    "between_seeds": "mean note-F1 (onsets within 50 ms, same pitch, drums left out) between "
                     "the MIDI sidecars of different seeds' takes of the same clip",
    "score": "a take's own notes (MIDI sidecar): mode by Krumhansl-Schmuckler on the "
             "duration-weighted pitch classes (the corpus's own labelling rule) vs the clip's "
             "manifest mode; note_density = distinct pitched onsets per second; by style class",
    "symbolic": "MGEval (Yang & Lerch 2018): per feature, overlapped area (OA, 1 = best) and "
                "KL between the kernel densities of intra-reference and generated-to-reference "
                "distances; controls: random notes on the 24 fps grid, held-out halves",
}


def embedding_section(emb) -> dict:
    builtin = emb.name == embeddings.DEFAULT_EMBEDDING
    return {"name": emb.name, "dim": int(emb.dim),
            "comparable_with_paper": False if builtin else None,
            "note": ("weight-free statistics of log-mel, chroma and onsets "
                     "(diffv2m.evaluate.embeddings); this is NOT VGGish, PANNs or CLAP, so FD, "
                     "density/coverage and KL here are NOT comparable with the paper's FAD/FD/KL/"
                     "density/coverage numbers" if builtin else
                     "user-registered embedding; comparability with the paper depends on it "
                     "being the same network and weights")}


def distribution_section(gen: np.ndarray, ref: np.ndarray | None, pairs, emb, k: int) -> dict:
    if ref is None or len(ref) == 0:
        return {"skipped": "no reference music"}
    out: dict = {"n_generated": int(len(gen)), "n_reference": int(len(ref))}
    out["frechet_distance"] = distribution.frechet_distance(gen, ref)
    if len(gen) < gen.shape[1] or len(ref) < ref.shape[1]:
        out["frechet_note"] = (f"fewer clips than embedding dimensions ({gen.shape[1]}): "
                               "covariances are rank-deficient; treat FD as indicative")
    if len(ref) > k:
        out["density_coverage"] = distribution.density_coverage(ref, gen, k=k)
    else:
        out["density_coverage"] = {"skipped": f"needs more than k={k} reference clips, have {len(ref)}"}
    if emb.name == embeddings.DEFAULT_EMBEDDING:
        cs = embeddings.CHROMA_MEAN
        p = np.stack([ref[j, cs] for _, j in pairs]) if pairs else None
        q = np.stack([gen[i, cs] for i, _ in pairs]) if pairs else None
        out["chroma_kl"] = {
            "paired_mean": distribution.mean_pairwise_kl(p, q) if pairs else None,
            "set_means": distribution.kl_divergence(ref[:, cs].mean(0), gen[:, cs].mean(0)),
            "n_pairs": len(pairs)}
    else:
        out["chroma_kl"] = {"skipped": "defined for the built-in embedding's chroma block only"}
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    report, plots = run(args, progress)
    atomic_write_text(args.output, json.dumps(report, indent=2, allow_nan=False) + "\n")
    progress(f"wrote {args.output}")
    if args.html:
        from .report import write_html
        write_html(args.html, report, plots)
        progress(f"wrote {args.html}")
    return 0
