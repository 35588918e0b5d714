"""Export a Diff-V2M checkpoint to ONNX graphs (one per network) with a manifest.

Graphs (inputs -> outputs; named dims are dynamic):

=================  ===========================================================  ==============
graph              inputs                                                       output
=================  ===========================================================  ==============
semantic_encoder   pixels [frames,3,S,S] f32 (``semantic_pixels``)               tokens [frames,d]
rhythm_predictor   semantic [batch,seconds,d], scene_cut [batch,seconds],        odf [batch,seconds]
                   pseudo_beat [batch,seconds] f32, cls [batch] i64
dit                x [batch,C,frames], t [batch], semantic [batch,seconds,d],    v [batch,C,frames]
                   rhythm [batch,seconds,1], colour [batch,seconds,3072],
                   cls [batch] i64, seconds_start [batch], seconds_total [batch]
                   (+ cues [batch,K,frames] when the config has a cue track)
decoder            z [batch,C,frames]  (computes ``decode(z * latent_scale)``)    audio [batch,ch,samples]
                   score family: note probabilities      roll [batch,4,3,P,roll_frames]
encoder            audio [batch,ch,samples] (score family: roll [batch,4,3,P,    mean [batch,C,frames]
                   roll_frames])
=================  ===========================================================  ==============

Choices (measured here with torch 2.13, onnx 1.23, onnxruntime 1.32):

* Exporter: the TorchScript ("legacy", ``dynamo=False``) exporter.  The dynamo exporter fails
  on the DiT in torch 2.13 (a SyntaxError inside its generated FX code) and is ~3x slower to
  run; the legacy one exports every graph in seconds, keeps the requested axes symbolic, and
  writes a single ``.onnx`` file.  Graphs whose weights exceed ~1.5 GB (the paper DiT) are
  saved with their weights in ``NAME.onnx.data`` beside them; the manifest hashes both.
* Opset 17 by default (``--opset`` 17..20): ``LayerNormalization`` is a single op, attention
  is ``MatMul``/``Softmax`` (no opset-23 ``Attention`` node, whose TensorRT support is
  unverified), supported by TensorRT 8.6+ and every onnxruntime since 1.14.
* IR version pinned to 9 (:data:`IR_VERSION`): onnx 1.23 would write IR 14, which
  onnxruntime 1.31 refuses; IR 9 covers opsets up to 20 and loads in onnxruntime >= 1.15.
* CFG batching stays outside the graph: ``synthesis`` concatenates the conditional and the
  null condition into batch 2, so the DiT graph has a dynamic ``batch`` dim (one call of
  batch 2 per sampler step; ``benchmarks/bench_runtime.py`` measures it against 2 x batch 1).
* Weight norm is folded into plain weights (``Autoencoder.remove_weight_norm`` on a copy) and
  ``latent_scale`` is baked into the decoder, as ``TorchBackend.decode`` does.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from diffv2m.atomic import atomic_path
from diffv2m.config import ModelConfig
from diffv2m.errors import UserError
from diffv2m.features.mood import MOOD_FILE, MoodReader
from diffv2m.cache import file_sha256

from diffv2m.runtime.manifest import FORMAT, FORMAT_VERSION, MANIFEST, validate_manifest

__all__ = ["export_onnx", "validate_manifest", "graph_specs", "IR_VERSION", "DEFAULT_OPSET",
           "check_dynamic_dims", "example_inputs", "torch_reference"]

IR_VERSION = 9
DEFAULT_OPSET = 17
OPSETS = (17, 18, 19, 20)
EXTERNAL_DATA_BYTES = 1_500_000_000
GRAPHS = ("semantic_encoder", "rhythm_predictor", "dit", "decoder", "encoder")

_DTYPES = {1: "float32", 7: "int64", 10: "float16", 16: "bfloat16", 6: "int32", 9: "bool"}


# ---------------------------------------------------------------- wrappers

class _Decoder(nn.Module):
    """``z -> decoder(z * latent_scale)`` with weight norm folded."""

    def __init__(self, autoencoder: nn.Module, latent_scale: float):
        super().__init__()
        self.decoder = autoencoder.decoder
        self.latent_scale = float(latent_scale)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z * self.latent_scale)


class _ScoreDecoder(nn.Module):
    """Score family: ``z -> note probabilities decode(z * latent_scale)`` [B, 4, 3, P, F]."""

    def __init__(self, autoencoder: nn.Module, latent_scale: float):
        super().__init__()
        self.ae = autoencoder
        self.latent_scale = float(latent_scale)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.ae.decode(z * self.latent_scale)


class _Encoder(nn.Module):
    """``audio -> mean`` (the deterministic latent, unscaled: DiT latents are mean / scale)."""

    def __init__(self, autoencoder: nn.Module):
        super().__init__()
        self.ae = autoencoder

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.ae.encode(audio)[0]


def graph_specs(model: nn.Module, config: ModelConfig) -> dict[str, dict[str, Any]]:
    """Per graph: the module, input names + dynamic axes, output names + dynamic axes."""
    # A fresh copy with weight norm folded.  Not copy.deepcopy: a deep copy shares the
    # parametrised module classes, and removing the parametrisation from the copy would
    # delete ``weight`` from the original's class too.
    from diffv2m.models.autoencoder import Autoencoder
    src = model.autoencoder
    if isinstance(src, Autoencoder):
        ae = Autoencoder(src.cfg)
        ae.load_state_dict(src.state_dict())
        ae.eval().remove_weight_norm()
    else:
        ae = copy.deepcopy(src).eval()
    specs: dict[str, dict[str, Any]] = {}
    if config.semantic.backend == "cnn":
        specs["semantic_encoder"] = dict(
            module=model.semantic_encoder, inputs={"pixels": {0: "frames"}},
            outputs={"tokens": {0: "frames"}})
    specs["rhythm_predictor"] = dict(
        module=model.rhythm_predictor,
        inputs={"semantic": {0: "batch", 1: "seconds"}, "scene_cut": {0: "batch", 1: "seconds"},
                "pseudo_beat": {0: "batch", 1: "seconds"}, "cls": {0: "batch"}},
        outputs={"odf": {0: "batch", 1: "seconds"}})
    bs = {0: "batch", 1: "seconds"}
    dit_inputs = {"x": {0: "batch", 2: "frames"}, "t": {0: "batch"}, "semantic": bs,
                  "rhythm": bs, "colour": bs, "cls": {0: "batch"}, "seconds_start": {0: "batch"},
                  "seconds_total": {0: "batch"}}
    if config.dit.cue_channels:
        dit_inputs["cues"] = {0: "batch", 2: "frames"}     # the frame-aligned cue track
    specs["dit"] = dict(
        module=model.dit,
        inputs=dit_inputs,
        outputs={"v": {0: "batch", 2: "frames"}},
        # the released wiring feeds rhythm tokens to the emotion cross-attention: colour unused
        may_prune=("colour",) if config.dit.published_wiring else ())
    if config.latent_family == "score":       # note probabilities in the roll layout
        specs["decoder"] = dict(module=_ScoreDecoder(ae, config.latent_scale),
                                inputs={"z": {0: "batch", 2: "frames"}},
                                outputs={"roll": {0: "batch", 4: "roll_frames"}})
        specs["encoder"] = dict(module=_Encoder(ae),
                                inputs={"roll": {0: "batch", 4: "roll_frames"}},
                                outputs={"mean": {0: "batch", 2: "frames"}})
        return specs
    specs["decoder"] = dict(module=_Decoder(ae, config.latent_scale),
                            inputs={"z": {0: "batch", 2: "frames"}},
                            outputs={"audio": {0: "batch", 2: "samples"}})
    specs["encoder"] = dict(module=_Encoder(ae), inputs={"audio": {0: "batch", 2: "samples"}},
                            outputs={"mean": {0: "batch", 2: "frames"}})
    return specs


def example_inputs(name: str, config: ModelConfig, *, batch: int = 2, seconds: int = 3,
                   frames: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for graph ``name`` (numpy, in input order).  Export uses sizes >= 2 on
    every dynamic dim, all different, so no dim can be mistaken for another."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    d, S = config.semantic_dim, config.semantic.image_size
    C, ch = config.autoencoder.latent_dim, config.autoencoder.audio_channels
    if name == "semantic_encoder":
        return {"pixels": rng.standard_normal((seconds + batch, 3, S, S)).astype(f32)}
    if name == "rhythm_predictor":
        return {"semantic": rng.standard_normal((batch, seconds, d)).astype(f32),
                "scene_cut": (rng.random((batch, seconds)) > 0.7).astype(f32),
                "pseudo_beat": rng.random((batch, seconds)).astype(f32),
                "cls": rng.integers(0, config.dit.num_classes, batch).astype(np.int64)}
    if name == "dit":
        colour = rng.random((batch, seconds, config.colour_dim)).astype(f32)
        return {"x": rng.standard_normal((batch, C, frames)).astype(f32),
                "t": rng.random(batch).astype(f32),
                "semantic": rng.standard_normal((batch, seconds, d)).astype(f32),
                "rhythm": rng.random((batch, seconds, 1)).astype(f32),
                "colour": colour / colour.sum(-1, keepdims=True),
                "cls": rng.integers(0, config.dit.num_classes, batch).astype(np.int64),
                "seconds_start": rng.uniform(0, 5, batch).astype(f32),
                "seconds_total": rng.uniform(5, 30, batch).astype(f32),
                **({"cues": rng.random((batch, config.dit.cue_channels, frames)).astype(f32)}
                   if config.dit.cue_channels else {})}
    if name == "decoder":
        return {"z": rng.standard_normal((batch, C, frames)).astype(f32)}
    if name == "encoder" and config.latent_family == "score":
        ae = config.autoencoder
        roll = (rng.random((batch, 4, 3, ae.pitches, frames * ae.hop)) > 0.97).astype(f32)
        return {"roll": roll}
    if name == "encoder":
        hop = config.autoencoder.hop
        return {"audio": (0.3 * rng.standard_normal((batch, ch, frames * hop))).astype(f32)}
    raise KeyError(name)


@torch.inference_mode()
def torch_reference(module: nn.Module, inputs: dict[str, np.ndarray]) -> np.ndarray:
    out = module(*(torch.from_numpy(np.ascontiguousarray(v)) for v in inputs.values()))
    return out.float().numpy()


# ---------------------------------------------------------------- checks

def _dims(value_info) -> list[int | str]:
    return [d.dim_param if d.dim_param else int(d.dim_value)
            for d in value_info.type.tensor_type.shape.dim]


def io_table(model) -> tuple[list[dict], list[dict]]:
    """(inputs, outputs) of an ONNX model: name, dtype, shape (named dims are dynamic)."""
    init = {i.name for i in model.graph.initializer}
    def row(v):
        return {"name": v.name, "dtype": _DTYPES.get(v.type.tensor_type.elem_type,
                                                     str(v.type.tensor_type.elem_type)),
                "shape": _dims(v)}
    return ([row(v) for v in model.graph.input if v.name not in init],
            [row(v) for v in model.graph.output])


def check_dynamic_dims(model, spec: dict[str, Any], where: str = "") -> None:
    """Every axis declared dynamic in ``spec`` is symbolic (named) in the saved graph."""
    ins, outs = io_table(model)
    table = {r["name"]: r["shape"] for r in ins + outs}
    for names in (spec["inputs"], spec["outputs"]):
        for name, axes in names.items():
            if name not in table:
                if name in spec.get("may_prune", ()):
                    continue                 # an input the model provably ignores
                raise RuntimeError(f"{where}: graph has no input/output {name!r}")
            for axis, dim_name in axes.items():
                got = table[name][axis]
                if not isinstance(got, str):
                    raise RuntimeError(f"{where}: {name} axis {axis} ({dim_name}) was fixed to "
                                       f"{got} by the exporter")


# ---------------------------------------------------------------- export

def _export_one(name: str, spec: dict[str, Any], config: ModelConfig, out_dir: Path,
                opset: int) -> dict[str, Any]:
    import onnx
    module = spec["module"].eval()
    example = example_inputs(name, config)
    args = tuple(torch.from_numpy(v) for v in example.values())
    final = out_dir / f"{name}.onnx"
    data_name = f"{name}.onnx.data"
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{name}-") as tmp:
        raw = Path(tmp) / f"{name}.onnx"
        dyn = {**spec["inputs"], **spec["outputs"]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, str(raw), dynamo=False, opset_version=opset,
                              input_names=list(spec["inputs"]),
                              output_names=list(spec["outputs"]),
                              dynamic_axes=dyn, do_constant_folding=True)
        model = onnx.load(str(raw))                 # external data (> 2 GB) loaded too
        model.ir_version = IR_VERSION
        model.producer_name = "diffv2m"
        weight_bytes = sum(len(t.raw_data) for t in model.graph.initializer)
        external = weight_bytes > EXTERNAL_DATA_BYTES
        check_dynamic_dims(model, spec, where=str(final))
        staged = Path(tmp) / "out" / f"{name}.onnx"
        staged.parent.mkdir()
        if external:
            onnx.save_model(model, str(staged), save_as_external_data=True,
                            all_tensors_to_one_file=True, location=data_name,
                            size_threshold=1024)
        else:
            onnx.save_model(model, str(staged))
        onnx.checker.check_model(str(staged), full_check=True)
        files = [staged] + ([staged.parent / data_name] if external else [])
        hashes = {p.name: file_sha256(p) for p in files}
        if not external and (out_dir / data_name).exists():
            (out_dir / data_name).unlink()          # left over from an older, bigger export
        for p in files:
            os.replace(p, out_dir / p.name)
    ins, outs = io_table(model)
    return {"file": final.name, "sha256": hashes[final.name], "files": hashes,
            "inputs": ins, "outputs": outs, "opset": opset, "ir_version": IR_VERSION,
            "external_data": external}


def parity_check(name: str, module: nn.Module, path: Path, config: ModelConfig, *,
                 inputs: dict[str, np.ndarray] | None = None, seed: int = 1) -> dict[str, float]:
    """Run graph ``path`` in onnxruntime (CPU) and ``module`` in torch on the same inputs.

    Default inputs use sizes other than the export example's (batch 1, a full window of
    seconds and latent frames), so a dim that was baked in fails here.  Returns
    ``{"max_abs_err", "scale" (max |torch output|), "rel_err" (= err / scale)}``.
    """
    import onnxruntime as ort
    if inputs is None:
        W = min(config.window_seconds, config.rhythm.max_seconds, config.dit.max_seconds)
        inputs = example_inputs(name, config, batch=1, seconds=W,
                                frames=min(config.latent_frames, 64), seed=seed)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    takes = {i.name for i in sess.get_inputs()}
    got = sess.run(None, {k: v for k, v in inputs.items() if k in takes})[0]
    want = torch_reference(module, inputs)
    if got.shape != want.shape:
        raise RuntimeError(f"{path}: onnxruntime output shape {got.shape} != torch {want.shape}")
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    return {"max_abs_err": err, "scale": scale, "rel_err": err / max(scale, 1e-12)}


def export_onnx(checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike, *,
                opset: int = DEFAULT_OPSET, graphs: tuple[str, ...] | None = None,
                parity: bool = True, rel_tol: float = 1e-4,
                progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Export every graph of ``checkpoint`` (default: the embedded model) into ``out_dir``.

    Writes ``NAME.onnx`` (+ ``NAME.onnx.data`` for very large graphs) and ``manifest.json``
    (written last, atomically).  With ``parity`` each graph is run in onnxruntime against torch
    on fresh random inputs and the export fails if ``max_abs_err > rel_tol * scale``.
    Returns the manifest.
    """
    from diffv2m.assets import default_checkpoint

    if opset not in OPSETS:
        raise UserError(f"opset {opset} is not supported; choose one of "
                        f"{', '.join(map(str, OPSETS))} (IR version {IR_VERSION})")
    ckpt = Path(checkpoint) if checkpoint else default_checkpoint()
    if not ckpt.is_file():
        what = "the embedded default model is missing" if checkpoint is None else "no such checkpoint"
        raise UserError(f"{ckpt}: {what}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    created = [d for d in (out, *out.parents) if not d.exists()]
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _export_into(ckpt, out, opset=opset, graphs=graphs, parity=parity,
                            rel_tol=rel_tol, progress=progress)
    except BaseException:
        if created:                          # a failed export leaves no folder it made
            shutil.rmtree(created[-1], ignore_errors=True)
        raise


def _export_into(ckpt: Path, out: Path, *, opset, graphs, parity, rel_tol, progress):
    import onnx
    import onnxruntime
    from diffv2m import __version__ as diffv2m_version
    from diffv2m.models.checkpoint import load_checkpoint
    model, config, meta = load_checkpoint(ckpt)
    specs = graph_specs(model, config)
    names = [g for g in GRAPHS if g in specs and (graphs is None or g in graphs)]
    ckpt_sha = file_sha256(ckpt)
    entries: dict[str, Any] = {}
    report: dict[str, Any] = {}
    for k, name in enumerate(names):
        if progress:
            progress("export", k, len(names))
        t0 = time.perf_counter()
        entries[name] = _export_one(name, specs[name], config, out, opset)
        entries[name]["export_seconds"] = round(time.perf_counter() - t0, 2)
        if parity:
            r = parity_check(name, specs[name]["module"], out / entries[name]["file"], config)
            report[name] = {k2: float(f"{v:.3g}") for k2, v in r.items()}
            if r["max_abs_err"] > rel_tol * max(r["scale"], 1e-6):
                raise RuntimeError(f"{out / entries[name]['file']}: onnxruntime differs from "
                                   f"torch by {r['max_abs_err']:.3g} (scale {r['scale']:.3g})")
    if progress:
        progress("export", len(names), len(names))
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "model_id": f"{ckpt.name}:{ckpt_sha[:16]}",
        "checkpoint": {"file": ckpt.name, "sha256": ckpt_sha, "meta": meta},
        "config": config.to_dict(),
        "opset": opset, "ir_version": IR_VERSION,
        "exporter": {"method": "torch.onnx.export(dynamo=False)", "torch": torch.__version__,
                     "onnx": onnx.__version__, "onnxruntime_checked": onnxruntime.__version__,
                     "diffv2m": diffv2m_version},
        "graphs": entries,
        "parity": {"rel_tol": rel_tol, "inputs": "random, batch 1, one window", **report}
        if parity else {},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    mood = ckpt.parent / MOOD_FILE          # the picture's mood reader travels with the model
    if mood.is_file():
        MoodReader.load(mood)               # a broken file fails the export, in one line
        with atomic_path(out / MOOD_FILE) as tmp:
            shutil.copyfile(mood, tmp)
            os.chmod(tmp, 0o644)
        manifest["mood_reader"] = {"file": MOOD_FILE, "sha256": file_sha256(out / MOOD_FILE)}
    with atomic_path(out / MANIFEST) as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
        os.chmod(tmp, 0o644)
    validate_manifest(out, require_graphs=graphs is None)
    return manifest
