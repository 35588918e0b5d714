"""``diffv2m export onnx [CHECKPOINT] -o DIR [--opset N]``: checkpoint -> ONNX graphs + manifest."""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffv2m export",
                                description="Export a checkpoint to ONNX graphs for the runtime.")
    sub = p.add_subparsers(dest="what", required=True)
    o = sub.add_parser("onnx", help="export every network as an ONNX graph with a manifest")
    o.add_argument("checkpoint", nargs="?", default=None,
                   help="model checkpoint (.safetensors); default: the embedded model")
    o.add_argument("-o", "--output", required=True, help="output directory")
    o.add_argument("--opset", type=int, default=17, help="ONNX opset, 17..20 (default 17)")
    o.add_argument("--graphs", default=None,
                   help="comma-separated subset (semantic_encoder,rhythm_predictor,dit,decoder,encoder)")
    o.add_argument("--no-parity", action="store_true",
                   help="skip the onnxruntime-vs-torch check of each graph")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from diffv2m.export.onnx import export_onnx
    graphs = tuple(g.strip() for g in args.graphs.split(",")) if args.graphs else None
    manifest = export_onnx(args.checkpoint, args.output, opset=args.opset, graphs=graphs,
                           parity=not args.no_parity)
    for name, g in manifest["graphs"].items():
        par = manifest.get("parity", {}).get(name)
        extra = f"  max abs err {par['max_abs_err']:.2g} (scale {par['scale']:.2g})" if par else ""
        print(f"{args.output}/{g['file']}  {g['sha256'][:12]}{extra}")
    print(f"{args.output}/manifest.json  (opset {manifest['opset']}, IR {manifest['ir_version']})")
    return 0
