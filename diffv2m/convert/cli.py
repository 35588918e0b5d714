"""``diffv2m convert official CKPT [--vae F] [--clip F] [--use-ema] [--config C] -o DIR``."""
from __future__ import annotations

import argparse
import sys

from ..config import add_config_option
from ..errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffv2m convert",
                                description="Convert published weights into this project's format.")
    sub = p.add_subparsers(dest="what", required=True)
    o = sub.add_parser("official", help="the published Diff-V2M Lightning checkpoint (.ckpt, "
                       ".pt or a flat .safetensors)")
    o.add_argument("checkpoint", help="published checkpoint file")
    o.add_argument("-o", "--out", required=True, help="output folder (model.safetensors, config.json)")
    o.add_argument("--vae", help="external Oobleck VAE .safetensors (Stable Audio Open layout); "
                   "overrides or supplies the checkpoint's pretransform")
    o.add_argument("--clip", help="local open_clip ViT-B/32 weights for the semantic backend "
                   "(checked, copied to DIR/clip.safetensors)")
    o.add_argument("--use-ema", action="store_true",
                   help="take the DiT from the EMA copy (the published inference uses the online "
                        "weights, the default)")
    add_config_option(o, None, "target config (name or JSON); default: the paper config with "
                               "the released rhythm->emotion wiring")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    import torch  # noqa: F401  (a clear error when torch is missing)

    from ..config import resolve_config
    from .official import convert_official
    config = resolve_config(args.config) if args.config else None

    def progress(stage: str, done: int, total: int) -> None:
        print(f"[{done}/{total}] {stage}", file=sys.stderr)

    rep = convert_official(args.checkpoint, args.out, vae=args.vae, clip=args.clip,
                           use_ema=args.use_ema, config=config, progress=progress)
    print(f"converted {rep['converted_tensors']} tensors ({rep['parameters']:,d} parameters, "
          f"{rep['weights']} weights, VAE from {rep['vae']}) -> {args.out}/model.safetensors")
    if rep["dropped_unused"]:
        print(f"dropped {len(rep['dropped_unused'])} known unused tensors: "
              f"{', '.join(rep['dropped_unused'])}")
    if rep["ignored_training_extras"] or rep["ema_tensors_ignored"]:
        print(f"ignored training-only tensors: {', '.join(rep['ignored_training_extras'])}"
              f"; EMA copy: {rep['ema_tensors_ignored']} tensors not used")
    if rep["weight_norm_folded"] or rep["snake_reshaped"]:
        print(f"weight norm folded: {rep['weight_norm_folded']}, Snake reshaped: "
              f"{rep['snake_reshaped']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    try:
        sys.exit(main(sys.argv[1:]))
    except UserError as e:
        print(f"diffv2m: error: {e}", file=sys.stderr)
        sys.exit(2)
