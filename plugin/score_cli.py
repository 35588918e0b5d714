"""``diffv2m score TIMELINE``: score a timeline selection; write takes and a NEW timeline.

Runs on the torch-free runtime (exported graphs of the embedded default unless ``--onnx-dir``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diffv2m.errors import UserError
from diffv2m.generation_options import (add_generation_options, add_score_file_options,
                                        settings_from_args)
from diffv2m.synthesis import Settings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="diffv2m score",
        description="Score a timeline selection (any format an installed OTIO adapter reads) and "
                    "write a new timeline with a 'Diff-V2M score' audio track. With a "
                    "score-family model, --midi and --stems also write the first take's notes "
                    "and one WAV per track; the stems join the timeline as muted "
                    "'Diff-V2M <track>' audio tracks.")
    p.add_argument("timeline", help="timeline file (.otio, .otioz, .edl, .xml, .fcpxml, .aaf, "
                                    ".kdenlive, .mlt) "
                                    "or a plain video")
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--range", metavar="IN-OUT",
                     help="IN-OUT as timecode (01:00:10:00-01:00:40:00; ';' for drop-frame), "
                          "frames (240-960) or seconds (10s-40s)")
    sel.add_argument("--marker", help="the marker with this name: its range; a point or "
                                      "one-frame marker selects up to the next marker or the "
                                      "end of the clip under it")
    p.add_argument("--duration", metavar="T",
                   help="with --marker: select T from the marker (frames 96, seconds 4s or "
                        "timecode 00:00:04:00)")
    sel.add_argument("--clips", help="comma-separated clip names: from the first one's start to "
                                     "the last one's end")
    p.add_argument("--track", type=int, default=None,
                   help="with --clips: the video track (1 = bottom) to look in")
    p.add_argument("-o", "--output", required=True, help="the new timeline (never the input)")
    p.add_argument("--takes", type=int, default=1, help="K takes with seeds SEED..SEED+K-1")
    p.add_argument("--takes-as", choices=("tracks", "clips"), default="tracks",
                   help="alternate takes as extra tracks (default) or as clips in one track")
    add_generation_options(p)
    p.add_argument("--model", choices=("score", "audio"), default=None,
                   help="embedded model: score (default) or audio; ignored with --onnx-dir")
    add_score_file_options(p)
    p.add_argument("--rate", type=float, default=None,
                   help="frame rate for formats that do not carry one (EDL), e.g. 23.976")
    p.add_argument("--media-root", help="relink: look for missing media by name under this folder")
    p.add_argument("--onnx-dir", help="exported graphs (default: the embedded model's)")
    p.add_argument("--take-dir", help="where to write the take WAVs (default: beside the output)")
    p.add_argument("--mux", help="also write a preview MP4 of the selection with the first take")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="let the OTIO adapters' banners, warnings and log lines through")
    return p


def split_range(text: str) -> tuple[str, str]:
    """``IN-OUT`` -> (IN, OUT) as given; the timeline code parses them in its own rate
    (record timecode counts from the timeline's start timecode)."""
    parts = text.split("-")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise UserError(f"--range {text!r}: expected IN-OUT")
    return parts[0].strip(), parts[1].strip()


def check_options(args) -> list[Settings]:
    """Every option checked before any work; returns the settings of each take."""
    import math
    from diffv2m.settings_limits import check_settings, check_threads
    first = settings_from_args(args)
    check_settings(first, takes=args.takes)
    check_threads(args.threads)
    if args.rate is not None and not (math.isfinite(args.rate) and 0 < args.rate <= 1000):
        raise UserError(f"--rate {args.rate}: must be a frame rate above 0 and at most 1000")
    if args.track is not None and args.track < 1:
        raise UserError(f"--track {args.track}: tracks count from 1 (the bottom one)")
    return [settings_from_args(args, seed_offset=k) for k in range(args.takes)]


def check_outputs(out: Path, mux: str | None) -> None:
    """The output timeline's format (a writing adapter that can carry music) and the
    preview's container, before any work."""
    from diffv2m.plugin.timeline import adapter_for
    if adapter_for(out, write=True) == "cmx_3600":
        raise UserError(f"{out}: an EDL cannot carry the music (the cmx_3600 writer keeps one "
                        "video track and no audio); write .otio or FCP 7 .xml instead")
    if mux and Path(mux).suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise UserError(f"{mux}: preview must be .mp4 or .mov, not '{Path(mux).suffix}'")


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from diffv2m.output_transaction import OutputTransaction, resolved
    from diffv2m.progress import cli_progress
    from diffv2m.plugin import timeline as timeline_mod
    from diffv2m.plugin.session import ScoringSession
    from diffv2m.runtime.ort import load_runtime
    all_settings = check_options(args)
    timeline_mod.VERBOSE = bool(args.verbose)
    if args.duration is not None and not args.marker:
        raise UserError(f"--duration {args.duration}: goes with --marker NAME")
    src, out = Path(args.timeline), Path(args.output)
    resolved(src)                                          # a symlink loop: one line
    if not src.exists():
        raise UserError(f"{src}: no such file")
    if not src.is_file():
        raise UserError(f"{src}: not a file")
    if resolved(out) == resolved(src):
        raise UserError(f"{out}: refusing to overwrite the input timeline")
    check_outputs(out, args.mux)
    tx = OutputTransaction([src])
    tx.check(out, "timeline")
    if args.mux:
        tx.check(args.mux, "preview")
    if args.onnx_dir and Path(args.onnx_dir).is_dir():
        for f in Path(args.onnx_dir).iterdir():
            if f.is_file():
                tx.add_input(f)
    onnx_dir = model_graphs(args)
    if args.onnx_dir is not None or args.midi or args.stems or args.mode:
        from diffv2m.runtime.manifest import validate_manifest
        cfg = validate_manifest(onnx_dir, check_hashes=False)["config"]
        if args.mode and cfg.get("latent_family") != "score":
            raise UserError(f"--mode {args.mode}: needs a score-family model (--model score); "
                            f"{cfg.get('name')!r} makes audio directly")
    if args.midi or args.stems:
        from diffv2m.families import check_outputs as check_family_outputs, family
        from diffv2m.score.files import check_outputs as check_score_outputs, stem_paths
        check_family_outputs(family(cfg.get("latent_family", "audio")), midi=args.midi,
                             stems=stem_paths(args.stems) if args.stems else None)
        check_score_outputs(args.midi, args.stems)
        if args.midi:
            tx.check(args.midi, "MIDI file")
    # The timeline (or video) is read and the selection checked before the graphs load.
    session = ScoringSession(src, None, media_root=args.media_root,
                             take_dir=args.take_dir or out.parent, rate=args.rate)
    for f in session.media_files():
        tx.add_input(f)
    if args.range:                  # a plain video: checked against the file (one-clip timeline)
        session.select(range=split_range(args.range))
    elif args.marker:
        session.select(marker=args.marker, duration=args.duration)
    elif args.clips:
        session.select(clips=[c.strip() for c in args.clips.split(",") if c.strip()],
                       track=args.track)
    else:
        session.select()
    take_paths = [session.take_path(s.seed) for s in all_settings]
    records = []
    with tx:                     # every file appears together at the end, or none does
        for path in take_paths:
            tx.add(path, "take")
        tmp_timeline = tx.add(out, "timeline")
        tmp_mux = tx.add(args.mux, "preview") if args.mux else None
        stems = session.declare_score_files(tx, midi=args.midi, stems=args.stems)
        backend = session.backend = load_runtime(onnx_dir, threads=args.threads)
        with cli_progress(disable=args.quiet) as progress:
            for settings in all_settings:
                records.append(session.generate(settings, progress=progress, transaction=tx))
        for w in session.warnings:
            print(f"diffv2m: warning: {src}: {w}", file=sys.stderr)
        if args.midi or stems:
            session.write_score_files(records[0], tx, midi=args.midi, stems=stems)
        try:
            session.export_timeline(tmp_timeline, records, takes_as=args.takes_as,
                                    final_path=out, transaction=tx, stems=stems)
        except UserError as exc:
            # the transaction removes the takes this run made (documented in the README)
            made = "the takes made for it were" if len(records) > 1 else "the take made for it was"
            raise UserError(f"{exc} ({made} removed)") from None
        if tmp_mux is not None:
            session.export_preview(records[0], tmp_mux)
    for r in records:
        print(f"{r.path}  (seed {r.seed}, {r.take.duration:.2f} s)")
    if args.midi:
        score = records[0].take.score
        print(f"{args.midi}  (MIDI of seed {records[0].seed}, {len(score.notes)} notes, "
              f"{midi_tempo(score):g} BPM)")
    if args.stems:
        print(f"{args.stems}  (stems of seed {records[0].seed}, tracks "
              f"{', '.join(stems)})")
    print(f"{out}  (new timeline, {backend.name})")
    if args.mux:
        print(f"{args.mux}  (preview)")
    return 0


def model_graphs(args):
    """The exported graphs this run loads: ``--onnx-dir``, else the embedded ``--model``'s
    (default: the embedded default model's)."""
    from diffv2m.assets import DEFAULT_MODEL, model_onnx_dir
    if args.onnx_dir is not None:
        return Path(args.onnx_dir)
    return model_onnx_dir(args.model or DEFAULT_MODEL)


def midi_tempo(score) -> float:
    """The tempo the MIDI file says (the score's own, else the MIDI default)."""
    from diffv2m.score.midi import tempo_us
    return round(60e6 / tempo_us(score), 2)

