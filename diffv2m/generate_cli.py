"""``diffv2m generate VIDEO``: the main job (embedded default model unless --checkpoint)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .errors import UserError
from .synthesis import Settings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffv2m generate",
                                description="Make an original soundtrack for a video.")
    p.add_argument("video", help="input video file")
    p.add_argument("-o", "--output", help="output WAV/FLAC (default: VIDEO.take-SEED.wav)")
    p.add_argument("--seed", type=int, default=0, help="random seed (recorded in the output)")
    p.add_argument("--steps", type=int, default=25, help="sampler steps (default 25)")
    p.add_argument("--cfg", type=float, default=3.0, help="classifier-free guidance scale")
    p.add_argument("--sampler", default="dpmpp-2m", help="dpmpp-2m | euler | ddim")
    p.add_argument("--style", type=int, default=1, choices=(0, 1, 2),
                   help="class token: 0 calm, 1 moderate, 2 energetic (default 1)")
    p.add_argument("--start", type=float, default=0.0, help="start of the range, seconds")
    p.add_argument("--end", type=float, default=None, help="end of the range, seconds")
    p.add_argument("--mux", help="also write a preview MP4 with the music")
    p.add_argument("--checkpoint", help="model checkpoint (.safetensors); default: embedded")
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"),
                   help="auto: ONNX Runtime when exported graphs are available, else torch")
    p.add_argument("--onnx-dir", help="exported graphs (default: the embedded model's)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads")
    p.add_argument("--device", default="cpu",
                   help="torch backend only: cpu or cuda[:N] (default cpu)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                   help="torch backend only: autocast precision (default fp32)")
    p.add_argument("--no-cache", action="store_true", help="do not cache video features")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def make_backend(args):
    """Pick the backend: ONNX Runtime for the embedded graphs when present, else torch.

    An ``--onnx-dir`` that is missing, or lacks a manifest or a graph, is an error (never a
    silent fall back to torch); it also selects the ONNX backend.
    """
    want = args.backend
    if args.onnx_dir is not None:
        if want == "torch" or args.checkpoint is not None:
            raise UserError("--onnx-dir runs the exported graphs: it does not go with "
                            "--backend torch or --checkpoint")
        from .export.providers import validate_manifest
        validate_manifest(args.onnx_dir, check_hashes=False)     # one line when it is unusable
        want = "onnx"
    if want == "auto" and (args.device != "cpu" or args.precision != "fp32"):
        want = "torch"                   # a GPU / precision choice is a torch-backend choice
    if want == "auto":
        from .assets import default_onnx_dir
        want = "onnx" if (args.checkpoint is None and (default_onnx_dir() / "manifest.json").exists()) else "torch"
        if want == "torch":
            try:
                import torch  # noqa: F401
            except ModuleNotFoundError:
                raise UserError("no exported graphs and no torch: install the 'train' extra "
                                "or pass --onnx-dir") from None
    if want == "onnx":
        if args.device != "cpu" or args.precision != "fp32":
            raise UserError("--device/--precision apply to --backend torch; the ONNX runtime "
                            "picks TensorRT / CUDA / CPU providers itself")
        from .export.runtime import load_runtime
        return load_runtime(args.onnx_dir, threads=args.threads)
    from .pipeline import load_backend
    return load_backend(args.checkpoint, threads=args.threads, device=args.device,
                        precision=args.precision)


def model_inputs(args) -> list[Path]:
    """The model files this job reads (no output may be one of them)."""
    files = []
    if args.checkpoint:
        files.append(Path(args.checkpoint))
    if args.onnx_dir and Path(args.onnx_dir).is_dir():
        files += [p for p in Path(args.onnx_dir).iterdir() if p.is_file()]
    return files


def check_options(args) -> Settings:
    """Every option checked before any work; returns the settings."""
    from .settings_limits import check_seconds, check_settings, check_threads
    settings = check_settings(Settings(seed=args.seed, steps=args.steps, cfg_scale=args.cfg,
                                       sampler=args.sampler, cls=args.style))
    check_seconds(args.start, "--start")
    check_seconds(args.end, "--end")
    check_threads(args.threads)
    return settings


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from . import jobs, media
    from .output_transaction import OutputTransaction, resolved
    from .progress import cli_progress
    settings = check_options(args)
    video = Path(args.video)
    resolved(video)                                            # a symlink loop: one line
    out = Path(args.output) if args.output else video.with_name(f"{video.stem}.take-{args.seed}.wav")
    if out.suffix.lower() not in (".wav", ".flac"):
        raise UserError(f"{out}: output must end in .wav or .flac")
    if args.mux and Path(args.mux).suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise UserError(f"{args.mux}: preview must be .mp4 or .mov, not "
                        f"'{Path(args.mux).suffix}'")
    tx = OutputTransaction([video, *model_inputs(args)])
    tx.check(out, "take")
    if args.mux:
        tx.check(args.mux, "preview")
        if resolved(args.mux) == resolved(out):
            raise UserError(f"{args.mux}: the same path is given for the take and the preview")
    source = media.FileFrameSource(video, start=args.start, end=args.end)  # bad input fails first
    with tx:                     # the take and the preview appear together, or neither does
        tmp_out = tx.add(out, "take")                 # an unwritable folder fails here, at once
        tmp_mux = tx.add(args.mux, "preview") if args.mux else None
        backend = make_backend(args)
        cache = None
        if not args.no_cache:
            root = jobs.usable_cache_dir()
            cache = root / "features" if root is not None else None
        with cli_progress(disable=args.quiet) as progress:
            take = jobs.generate_file(backend, video, tmp_out, settings=settings,
                                      start=args.start, end=args.end, mux=tmp_mux,
                                      cache_dir=cache, model_id=getattr(backend, "model_id", ""),
                                      progress=progress, source=source)
    print(f"{out}  ({take.duration:.2f} s, seed {args.seed}, {backend.name})")
    if args.mux:
        print(f"{args.mux}  (preview)")
    return 0
