"""``diffv2m generate VIDEO``: the main job (embedded default model unless --checkpoint)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .errors import UserError
from .generation_options import (add_generation_options, add_score_file_options,
                                 settings_from_args)
from .synthesis import Settings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffv2m generate",
                                description="Make an original soundtrack for a video.")
    p.add_argument("video", help="input video file")
    p.add_argument("-o", "--output", help="output WAV/FLAC (default: VIDEO.take-SEED.wav)")
    add_generation_options(p)
    p.add_argument("--model", choices=("score", "audio"), default=None,
                   help="embedded model: score (notes rendered by FluidSynth; default) or "
                        "audio (the waveform-latent model); ignored with --checkpoint")
    add_score_file_options(p)
    p.add_argument("--ensemble", help="score model: instruments (default: from the mood); "
                                      "e.g. piano, epiano, harp, strings (see diffv2m.score.take)")
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
    """Pick the backend: ONNX Runtime for the model's exported graphs when present, else torch.

    An ``--onnx-dir`` that is missing, or lacks a manifest or a graph, is an error (never a
    silent fall back to torch); it also selects the ONNX backend.
    """
    from . import assets
    model = embedded_model(args)
    want = args.backend
    if args.onnx_dir is not None:
        if want == "torch" or args.checkpoint is not None:
            raise UserError("--onnx-dir runs the exported graphs: it does not go with "
                            "--backend torch or --checkpoint")
        from diffv2m.runtime.manifest import validate_manifest
        validate_manifest(args.onnx_dir, check_hashes=False)     # one line when it is unusable
        want = "onnx"
    if want == "auto" and (args.device != "cpu" or args.precision != "fp32"):
        want = "torch"                   # a GPU / precision choice is a torch-backend choice
    if want == "auto":
        onnx_dir = assets.model_onnx_dir(model)
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
        from diffv2m.runtime.ort import load_runtime
        return load_runtime(args.onnx_dir or assets.model_onnx_dir(model), threads=args.threads)
    from .pipeline import load_backend
    checkpoint = args.checkpoint
    if checkpoint is None and model != "audio":
        checkpoint = assets.model_checkpoint(model)
        if not checkpoint.exists():
            raise UserError(f"{checkpoint}: the embedded {model} model is missing from this install")
    return load_backend(checkpoint, threads=args.threads, device=args.device,
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
    settings = check_settings(settings_from_args(args))
    check_seconds(args.start, "--start")
    check_seconds(args.end, "--end")
    check_threads(args.threads)
    return settings


def check_family_options(args, backend, settings: Settings) -> Settings:
    """The options that only a score-family model takes (checked once the model is known,
    before any feature is computed); returns ``settings`` with them filled in."""
    from .families import family_of
    return family_of(backend.config).check_options(args, backend.config, settings)


def preload_renderer(args) -> None:
    """A score-family model's exported graphs: start loading the SoundFont now, on a thread,
    so that it runs beside the start-up (imports, probing the video, opening the graphs)
    instead of after the sampling.  Anything odd (no manifest, a torch checkpoint): nothing
    is preloaded and the render loads the SoundFont itself, as it always can."""
    if args.checkpoint is not None:
        return
    from . import assets
    from .config import ModelConfig
    from diffv2m.runtime.manifest import read_manifest
    try:
        manifest = read_manifest(args.onnx_dir or assets.model_onnx_dir(embedded_model(args)))
        config = ModelConfig.from_dict(manifest["config"])
    except (UserError, KeyError, TypeError, ValueError):
        return
    if config.latent_family != "score":
        return
    from .score.render import preload
    from .score.take import presets
    try:
        wanted = presets(args.ensemble)
    except UserError:                   # an unknown --ensemble: check_options says so
        wanted = []
    preload(args.soundfont, args.sample_rate or config.autoencoder.sample_rate, wanted)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    settings = check_options(args)
    preload_renderer(args)
    from . import jobs, media
    from .cache import usable_cache_dir
    from .output_transaction import OutputTransaction, resolved
    from .progress import cli_progress
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
    from . import media_probe_cache
    from .cache import default_cache_dir
    cached_probe = None if args.no_cache else media_probe_cache.lookup(video, default_cache_dir())
    source = media.FileFrameSource(video, start=args.start, end=args.end,  # bad input fails first
                                   info=cached_probe)
    if args.midi or args.stems:
        from .score.files import check_outputs
        check_outputs(args.midi, args.stems)
    if args.sample_rate is not None and not 8000 <= args.sample_rate <= 192000:
        raise UserError(f"--sample-rate {args.sample_rate}: must be within 8000..192000")
    if args.ensemble:
        from .score.take import ensemble
        ensemble(args.ensemble)                                # an unknown name: one line
    with tx:                     # every output appears together at the end, or none does
        tmp_out = tx.add(out, "take")                 # an unwritable folder fails here, at once
        tmp_mux = tx.add(args.mux, "preview") if args.mux else None
        tmp_midi = tx.add(args.midi, "MIDI file") if args.midi else None
        tmp_stems = None
        if args.stems:
            from .score.files import stem_paths
            tmp_stems = {t: tx.add(p, f"{t} stem") for t, p in stem_paths(args.stems).items()}
        backend = make_backend(args)
        settings = check_family_options(args, backend, settings)
        cache = None
        if not args.no_cache:
            root = usable_cache_dir()
            cache = root / "features" if root is not None else None
            if root is not None and cached_probe is None:
                media_probe_cache.keep(video, source.info, root)
        with cli_progress(disable=args.quiet) as progress:
            take = jobs.generate_file(backend, video, tmp_out, settings=settings,
                                      start=args.start, end=args.end, mux=tmp_mux,
                                      cache_dir=cache, model_id=getattr(backend, "model_id", ""),
                                      progress=progress, source=source, midi=tmp_midi,
                                      stems=tmp_stems, soundfont=args.soundfont)
    print(f"{out}  ({take.duration:.2f} s, seed {args.seed}, {backend.name})")
    if args.midi:
        print(f"{args.midi}  (MIDI, {len(take.score.notes)} notes, {take.score.ensemble.name})")
    if args.stems:
        print(f"{args.stems}  (stems)")
    if args.mux:
        print(f"{args.mux}  (preview)")
    return 0
