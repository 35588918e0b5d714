"""``diffv2m features extract MANIFEST``: precompute every clip's training features
(:mod:`diffv2m.data.clip_features`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .clip_features import extract_manifest


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="diffv2m features",
                                description="Precompute per-clip features for a corpus manifest.")
    sub = p.add_subparsers(dest="action", required=True)
    ex = sub.add_parser("extract", help="extract features for every clip of MANIFEST")
    ex.add_argument("manifest", type=Path)
    ex.add_argument("--cache", type=Path, help="cache folder (default: MANIFEST's folder/features)")
    ex.add_argument("--image-size", type=int, default=64)
    ex.add_argument("--sample-rate", type=int, default=24000)
    ex.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    cache = args.cache or args.manifest.parent / "features"
    paths = extract_manifest(args.manifest, cache, image_size=args.image_size,
                             sample_rate=args.sample_rate, progress=not args.quiet)
    print(f"{len(paths)} clips -> {cache}")
    return 0
