"""``diffv2m corpus build OUT_DIR --minutes M --seed S``: build the paired video/music corpus.

Deterministic by seed, resumable (complete clips are skipped), parallel with ``--workers``
(same result for any number of workers).  See :mod:`diffv2m.data.corpus`.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as one line (``UserError``) instead of exiting itself."""

    def error(self, message: str):  # noqa: D401
        raise UserError(f"{self.prog}: {message}")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WIDTHxHEIGHT") from None
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="diffv2m corpus", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    b = sub.add_parser("build", help="build or resume a corpus in OUT_DIR")
    b.add_argument("out_dir", metavar="OUT_DIR")
    b.add_argument("--minutes", type=float, required=True, help="total duration of the clips")
    b.add_argument("--seed", type=int, required=True)
    b.add_argument("--clip-seconds", type=float, default=10.0)
    b.add_argument("--sample-rate", type=int, default=24000)
    b.add_argument("--fps", type=float, default=24.0)
    b.add_argument("--size", type=_size, default=(128, 72), help="WIDTHxHEIGHT (even numbers)")
    b.add_argument("--workers", type=int, default=1, help="processes (result does not depend on it)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    r = sub.add_parser("scores", help="write the clips' score sidecars (clips/ID.roll.npz) of an "
                                      "existing corpus without rendering anything")
    r.add_argument("out_dir", metavar="CORPUS_DIR")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from ..progress import cli_progress
    from .corpus import build_corpus
    if args.action == "scores":
        from .scores import write_rolls
        with cli_progress(disable=args.quiet) as progress:
            n = write_rolls(args.out_dir, progress=progress)
        print(f"{args.out_dir}: {n} clip scores written", file=sys.stderr)
        return 0
    with cli_progress(disable=args.quiet) as progress:
        rep = build_corpus(args.out_dir, minutes=args.minutes, seed=args.seed,
                           clip_seconds=args.clip_seconds, sample_rate=args.sample_rate,
                           fps=args.fps, size=args.size, workers=args.workers,
                           progress=progress)
    print(f"{args.out_dir}/manifest.jsonl: {len(rep.records)} clips "
          f"({len(rep.rendered)} rendered now, {len(rep.records) - len(rep.rendered)} already "
          f"complete) in {rep.seconds:.1f} s", file=sys.stderr)
    return 0
