"""``diffv2m score TIMELINE``: score a timeline selection; write takes and a NEW timeline.

Runs on the torch-free runtime (exported graphs of the embedded default unless ``--onnx-dir``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UserError
from ..synthesis import Settings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="diffv2m score",
        description="Score a timeline selection (any format an installed OTIO adapter reads) and "
                    "write a new timeline with a 'Diff-V2M score' audio track.")
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--takes", type=int, default=1, help="K takes with seeds SEED..SEED+K-1")
    p.add_argument("--takes-as", choices=("tracks", "clips"), default="tracks",
                   help="alternate takes as extra tracks (default) or as clips in one track")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--cfg", type=float, default=3.0)
    p.add_argument("--sampler", default="dpmpp-2m")
    p.add_argument("--style", type=int, default=1, choices=(0, 1, 2))
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


def parse_range(text: str, rate: float):
    from .timeline import parse_time
    a, b = split_range(text)
    return parse_time(a, rate), parse_time(b, rate)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from ..progress import cli_progress
    from . import timeline as timeline_mod
    from .session import ScoringSession, load_backend
    timeline_mod.VERBOSE = bool(args.verbose)
    if args.duration is not None and not args.marker:
        raise UserError(f"--duration {args.duration}: goes with --marker NAME")
    src, out = Path(args.timeline), Path(args.output)
    if not src.exists():
        raise UserError(f"{src}: no such file")
    if out.resolve() == src.resolve():
        raise UserError(f"{out}: refusing to overwrite the input timeline")
    if args.takes < 1:
        raise UserError(f"--takes {args.takes}: must be at least 1")
    backend = load_backend(args.onnx_dir, threads=args.threads)
    session = ScoringSession(src, backend, media_root=args.media_root,
                             take_dir=args.take_dir or out.parent, rate=args.rate)
    if session.is_video:
        if args.range:
            a, b = parse_range(args.range, session.rate)
            session.select_seconds(_seconds(a), _seconds(b))
    elif args.range:
        session.select(range=split_range(args.range))
    elif args.marker:
        session.select(marker=args.marker, duration=args.duration)
    elif args.clips:
        session.select(clips=[c.strip() for c in args.clips.split(",") if c.strip()],
                       track=args.track)
    else:
        session.select()
    records = []
    with cli_progress(disable=args.quiet) as progress:
        for k in range(args.takes):
            settings = Settings(seed=args.seed + k, steps=args.steps, cfg_scale=args.cfg,
                                sampler=args.sampler, cls=args.style)
            records.append(session.generate(settings, progress=progress))
    for w in session.warnings:
        print(f"diffv2m: warning: {src}: {w}", file=sys.stderr)
    try:
        written = session.export_timeline(out, records, takes_as=args.takes_as)
    except UserError as exc:
        # A failed write removes the takes this run made (documented in the README).
        for r in records:
            Path(r.path).unlink(missing_ok=True)
        made = "the takes made for it were" if len(records) > 1 else "the take made for it was"
        raise UserError(f"{exc} ({made} removed)") from None
    for r in records:
        print(f"{r.path}  (seed {r.seed}, {r.take.duration:.2f} s)")
    print(f"{written}  (new timeline, {backend.name})")
    if args.mux:
        session.export_preview(records[0], args.mux)
        print(f"{args.mux}  (preview)")
    return 0


def _seconds(t) -> float:
    return t.to_seconds() if hasattr(t, "to_seconds") else float(t)
