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
    p.add_argument("--cfg", type=float, default=None,
                   help="classifier-free guidance scale (default: the model's, 2 for score, "
                        "3 for audio)")
    p.add_argument("--sampler", default="dpmpp-2m", help="dpmpp-2m | euler | ddim")
    p.add_argument("--style", type=int, default=1, choices=(0, 1, 2),
                   help="class token: 0 calm, 1 moderate, 2 energetic (default 1)")
    p.add_argument("--model", choices=("score", "audio"), default=None,
                   help="embedded model: score (notes rendered by FluidSynth; default) or "
                        "audio (the waveform-latent model); ignored with --checkpoint")
    p.add_argument("--midi", help="score model: also write the notes as a MIDI file")
    p.add_argument("--stems", help="score model: also write one WAV per track into this "
                                   "new (or empty) folder")
    p.add_argument("--ensemble", help="score model: instruments (default: from the mood); "
                                      "one of the corpus ensembles, e.g. piano, strings")
    p.add_argument("--sample-rate", type=int, default=None,
                   help="score model: output rate (default 48000, stereo)")
    p.add_argument("--soundfont", help="score model: General-MIDI SoundFont (.sf2); "
                                       "default: the system's")
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


def embedded_model(args) -> str:
    """``--model``, or the default: the score model when it is installed, else audio."""
    from . import assets
    if getattr(args, "model", None):
        return args.model
    return (assets.DEFAULT_MODEL if assets.model_checkpoint(assets.DEFAULT_MODEL).exists()
            or (assets.model_onnx_dir(assets.DEFAULT_MODEL) / "manifest.json").exists()
            else "audio")


def make_backend(args):
    """Pick the backend: ONNX Runtime for the embedded graphs when present, else torch."""
    from . import assets
    model = embedded_model(args)
    want = args.backend
    if want == "auto" and (args.device != "cpu" or args.precision != "fp32"):
        want = "torch"                   # a GPU / precision choice is a torch-backend choice
    if want == "auto":
        onnx_dir = Path(args.onnx_dir) if args.onnx_dir else assets.model_onnx_dir(model)
        want = "onnx" if (args.checkpoint is None and (onnx_dir / "manifest.json").exists()) else "torch"
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
        return load_runtime(args.onnx_dir or assets.model_onnx_dir(model), threads=args.threads)
    from .pipeline import load_backend
    checkpoint = args.checkpoint
    if checkpoint is None and model != "audio":
        checkpoint = assets.model_checkpoint(model)
        if not checkpoint.exists():
            raise UserError(f"{checkpoint}: the embedded {model} model is missing from this install")
    return load_backend(checkpoint, threads=args.threads, device=args.device,
                        precision=args.precision)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from . import jobs
    from .progress import cli_progress
    video = Path(args.video)
    out = Path(args.output) if args.output else video.with_name(f"{video.stem}.take-{args.seed}.wav")
    if out.resolve() == video.resolve():
        raise UserError(f"{out}: refusing to overwrite the input video")
    if out.suffix.lower() not in (".wav", ".flac"):
        raise UserError(f"{out}: output must end in .wav or .flac")
    from . import media
    source = media.FileFrameSource(video, start=args.start, end=args.end)  # bad input fails first
    if args.midi or args.stems:
        from .score.files import check_outputs
        check_outputs(args.midi, args.stems)
    backend = make_backend(args)
    score_family = backend.config.latent_family == "score"
    if not score_family:
        for flag, value in (("--midi", args.midi), ("--stems", args.stems),
                            ("--ensemble", args.ensemble), ("--soundfont", args.soundfont)):
            if value:
                raise UserError(f"{flag}: needs a score-family model (--model score); "
                                f"{backend.config.name!r} makes audio directly")
        if args.sample_rate not in (None, backend.config.sample_rate):
            raise UserError(f"--sample-rate {args.sample_rate}: the audio model makes "
                            f"{backend.config.sample_rate} Hz only")
    else:
        from .score.take import check_renderer, ensemble
        if args.ensemble:
            ensemble(args.ensemble)
        if args.sample_rate is not None and not 8000 <= args.sample_rate <= 192000:
            raise UserError(f"--sample-rate {args.sample_rate}: must be within 8000..192000")
        check_renderer(args.soundfont)
    cfg_scale = args.cfg if args.cfg is not None else backend.config.default_cfg_scale
    settings = Settings(seed=args.seed, steps=args.steps, cfg_scale=cfg_scale,
                        sampler=args.sampler, cls=args.style, ensemble=args.ensemble,
                        sample_rate=args.sample_rate if score_family else None)
    cache = None if args.no_cache else jobs.default_cache_dir() / "features"
    with cli_progress(disable=args.quiet) as progress:
        take = jobs.generate_file(backend, video, out, settings=settings, start=args.start,
                                  end=args.end, mux=args.mux, cache_dir=cache,
                                  model_id=getattr(backend, "model_id", ""), progress=progress,
                                  source=source, midi=args.midi, stems=args.stems,
                                  soundfont=args.soundfont)
    print(f"{out}  ({take.duration:.2f} s, seed {args.seed}, {backend.name})")
    if args.midi:
        print(f"{args.midi}  (MIDI, {len(take.score.notes)} notes, {take.score.ensemble.name})")
    if args.stems:
        print(f"{args.stems}  (stems)")
    if args.mux:
        print(f"{args.mux}  (preview)")
    return 0
