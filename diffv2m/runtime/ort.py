"""The generation pipeline on exported graphs: ONNX Runtime (TensorRT EP -> CUDA EP -> CPU)
or TensorRT engines, behind :class:`diffv2m.synthesis.Backend`.  numpy only: no torch.

``load_runtime(onnx_dir)`` validates the directory's manifest (stale graph -> UserError),
opens one onnxruntime session per graph (the DiT's and the decoder's at once, the others when
first run: a new seed with cached conditions never opens the semantic encoder or the rhythm
predictor) and reports what really runs each graph:
onnxruntime-gpu without a usable GPU silently falls back to the CPU provider, so the
provider is always read back from ``session.get_providers()``, never assumed.

CPU sessions: ``intra_op_num_threads`` = physical cores (or ``threads``), sequential
execution, ``ORT_ENABLE_ALL``; the optimised graph is saved once under
``CACHE/ort/<graph>-<sha16>-ort<version>-<provider>-<cpu>/`` and later sessions load it with
optimisations off (saves the optimisation pass at start-up).

TensorRT engines (``diffv2m engines build``) are used for a graph when the engine cache holds
one built for this GPU, this TensorRT and this exact ONNX file; otherwise the runtime says in
one line why not (``OrtBackend.notes``) and runs the graph on ONNX Runtime.
"""
from __future__ import annotations

import os
import platform
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from diffv2m.config import ModelConfig
from diffv2m.errors import UserError
from diffv2m.runtime.manifest import validate_manifest
from diffv2m.runtime.providers import physical_cores, provider_order

__all__ = ["OrtBackend", "load_runtime", "validate_manifest", "OrtGraph"]

#: windows one DiT call samples side by side on ONNX Runtime's CPU/CUDA providers (a row of a
#: batch comes out of onnxruntime bit for bit as alone: tests/test_runtime_batching.py)
WINDOW_BATCH = 8


def _cpu_tag() -> str:
    """A short tag of the CPU's instruction-set flags (optimised graphs may depend on them)."""
    import hashlib
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.machine()}-{hashlib.sha256(flags.encode()).hexdigest()[:8]}"


def _stop_spinning_after_runs(so) -> None:
    """onnxruntime's intra-op threads spin between a session's runs (tens of ms of a core
    after its last run): they still spin while a run goes on, and stop when it returns
    (``session.force_spinning_stop``), so an idle graph leaves the cores to what runs next
    (FluidSynth rendering the take, the video decoder, another graph).  Same kernels, same
    results."""
    so.add_session_config_entry("session.force_spinning_stop", "1")


class OrtGraph:
    """One onnxruntime session for one graph, with the provider it really runs on."""

    def __init__(self, name: str, path: Path, sha256: str, *, providers: list[str],
                 threads: int, cache_dir: Path | None, external_data: bool = False):
        import onnxruntime as ort
        self.name = name
        self.path = path
        self.requested = providers[0]
        self.optimized_path: Path | None = None
        self.from_cache = False
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        _stop_spinning_after_runs(so)
        provs: list[Any] = []
        for p in providers:
            if p == "TensorrtExecutionProvider" and cache_dir is not None:
                trt_cache = cache_dir / "ort-trt"
                trt_cache.mkdir(parents=True, exist_ok=True)
                provs.append((p, {"trt_engine_cache_enable": True,
                                  "trt_engine_cache_path": str(trt_cache),
                                  "trt_timing_cache_enable": True}))
            else:
                provs.append(p)
        cpu_only = providers == ["CPUExecutionProvider"]
        key_dir = None
        if cpu_only and cache_dir is not None:
            from diffv2m.cache import usable_cache_dir
            if usable_cache_dir(cache_dir / "ort") is None:     # read-only / full: one warning
                cache_dir = None
        if cpu_only and cache_dir is not None:
            key = f"{name}-{sha256[:16]}-ort{ort.__version__}-cpu-{_cpu_tag()}"
            key_dir = cache_dir / "ort" / key
            cached = key_dir / "model.onnx"
            if cached.is_file():
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                try:
                    self.session = ort.InferenceSession(str(cached), so, providers=provs)
                    self.from_cache = True
                    self.optimized_path = cached
                except Exception:                        # corrupt / foreign cache: rebuild
                    shutil.rmtree(key_dir, ignore_errors=True)
                    so = self._fresh_options(so)
        if not self.from_cache:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            tmp = None
            if key_dir is not None:
                key_dir.parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(prefix=f".{key_dir.name}.", dir=key_dir.parent))
                so.optimized_model_filepath = str(tmp / "model.onnx")
                if external_data:
                    so.add_session_config_entry(
                        "session.optimized_model_external_initializers_file_name",
                        "model.onnx.data")
                    so.add_session_config_entry(
                        "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
            try:
                self.session = ort.InferenceSession(str(path), so, providers=provs)
            except Exception as e:
                if tmp is None:
                    raise UserError(f"{path}: onnxruntime cannot load this graph "
                                    f"({str(e).splitlines()[0][:200]})") from None
                # Saving the optimised graph into the cache failed (a full or read-only cache
                # disk): the cache is optional, so open the graph again without it; only a
                # graph that still fails to load is the graph's fault.
                shutil.rmtree(tmp, ignore_errors=True)
                tmp = None
                self.session = self._open_uncached(path, so, provs, e, key_dir.parent)
            if tmp is not None:
                if (tmp / "model.onnx").is_file():
                    try:
                        os.rename(tmp, key_dir)         # atomic; a concurrent writer may win
                        self.optimized_path = key_dir / "model.onnx"
                    except OSError:
                        shutil.rmtree(tmp, ignore_errors=True)
                else:
                    shutil.rmtree(tmp, ignore_errors=True)
        actual = self.session.get_providers()
        self.provider = actual[0] if actual else "CPUExecutionProvider"
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _open_uncached(self, path: Path, so, provs, first_error: Exception, cache: Path):
        import errno
        import onnxruntime as ort
        so = self._fresh_options(so)
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(str(path), so, providers=provs)
        except Exception as e:
            raise UserError(f"{path}: onnxruntime cannot load this graph "
                            f"({str(e).splitlines()[0][:200]})") from None
        from diffv2m.cache import warn_cache_unusable
        text = str(first_error)
        line = text.splitlines()[0][:200] if text else type(first_error).__name__
        try:                            # onnxruntime words a full disk as a protobuf error
            st = os.statvfs(cache)
            full = st.f_bavail * st.f_frsize < (64 << 20) or st.f_favail == 0
        except OSError:
            full = False
        if full or "No space" in text or "ENOSPC" in text:
            warn_cache_unusable(cache, OSError(errno.ENOSPC, line))
        elif "Read-only" in text or "EROFS" in text:
            warn_cache_unusable(cache, OSError(errno.EROFS, line))
        else:
            warn_cache_unusable(cache, OSError(f"cannot save the optimised graph ({line})"))
        return session

    @staticmethod
    def _fresh_options(old):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = old.intra_op_num_threads
        so.inter_op_num_threads = old.inter_op_num_threads
        so.execution_mode = old.execution_mode
        so.log_severity_level = old.log_severity_level
        _stop_spinning_after_runs(so)
        return so

    @property
    def fell_back(self) -> bool:
        return self.provider != self.requested

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run with the feeds the graph takes (the exporter prunes inputs a model ignores,
        e.g. colour under the published wiring)."""
        return self.session.run(None, {k: v for k, v in feeds.items() if k in self.input_names})[0]

    def describe(self) -> str:
        s = f"{self.name}: onnxruntime {self.provider}"
        if self.fell_back:
            s += f" (asked for {self.requested}; onnxruntime fell back)"
        if self.optimized_path is not None:
            s += f"; optimised graph {'reused from' if self.from_cache else 'cached at'} " \
                 f"{self.optimized_path.parent}"
        return s


class OrtBackend:
    """:class:`diffv2m.synthesis.Backend` on exported graphs (ONNX Runtime / TensorRT engines).

    Attributes: ``name`` ("onnxruntime:<provider running the DiT>" or "tensorrt:<GPU>"),
    ``config`` (the exported model's ModelConfig), ``model_id``, ``graph_hashes``
    ({graph: sha256 of its .onnx}), ``providers`` ({graph: what runs it}), ``notes`` (one
    line per fallback or cache event), ``threads``.
    """

    def __init__(self, onnx_dir: Path, manifest: dict[str, Any], graphs: dict[str, Any], *,
                 threads: int, notes: list[str], open_graph=None,
                 conditions_identity: str | None = None):
        self.onnx_dir = onnx_dir
        self.manifest = manifest
        self.config = ModelConfig.from_dict(manifest["config"])
        self.model_id = manifest.get("model_id", "")
        self.graph_hashes = {k: g["sha256"] for k, g in manifest["graphs"].items()}
        self.graphs = graphs                # the graphs open so far (see graph())
        self.threads = threads
        self.notes = notes
        self._open_graph = open_graph
        self._opening = threading.Lock()
        self.mood_reader = None          # diffv2m.features.mood.MoodReader, when exported
        #: what the semantic tokens and the predicted ODF depend on besides the video (the
        #: feature cache keeps them under it: jobs.video_conditions); None: not cached
        self.conditions_identity = conditions_identity
        dit = self.graph("dit")
        self.name = (f"tensorrt:{dit.provider.split(':', 1)[1]}"
                     if dit.provider.startswith("tensorrt:") else f"onnxruntime:{dit.provider}")
        # windows per DiT call (synthesis.window_batch): TensorRT engines and the TensorRT EP
        # are built for the CFG batch of 2 (export.engines.profiles_for), so one window there
        self.window_batch = 1 if "tensorrt" in dit.provider.lower() else WINDOW_BATCH

    def graph(self, name: str):
        """The session (or TensorRT engine) of graph ``name``, opened on first use: a job
        opens only the graphs it runs (a new seed with cached conditions: the DiT and the
        decoder).  ``None`` when the export has no such graph."""
        g = self.graphs.get(name)
        if g is None and name in self.manifest["graphs"] and self._open_graph is not None:
            with self._opening:
                g = self.graphs.get(name)
                if g is None:
                    g = self.graphs[name] = self._open_graph(name)
        return g

    def _generation_graphs(self) -> dict[str, Any]:
        """Every graph generation can run (all but the encoder), opened."""
        return {k: self.graph(k) for k in self.manifest["graphs"] if k != "encoder"}

    @property
    def providers(self) -> dict[str, str]:
        """{graph: what runs it} for the graphs generation runs (opens them)."""
        return {k: getattr(g, "provider", "?") for k, g in self._generation_graphs().items()}

    def report(self) -> list[str]:
        """What runs each graph, and why anything fell back (one line each; opens them)."""
        self._generation_graphs()
        return [g.describe() for g in self.graphs.values()] + list(self.notes)

    # ---------------------------------------------------------------- Backend
    def encode_semantic(self, frames: np.ndarray) -> np.ndarray:
        from diffv2m.features.semantic import semantic_pixels
        g = self.graph("semantic_encoder")
        if g is None:
            raise UserError(f"{self.onnx_dir}: no semantic_encoder graph (semantic backend "
                            f"{self.config.semantic.backend!r} is not exported)")
        pix = semantic_pixels(frames, self.config.semantic.image_size, self.config.semantic.backend)
        out = [g.run({"pixels": np.ascontiguousarray(pix[i:i + 64], np.float32)})
               for i in range(0, len(pix), 64)]
        if not out:
            return np.zeros((0, self.config.semantic_dim), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def predict_rhythm(self, semantic, scene_cut, pseudo_beat, cls) -> np.ndarray:
        return np.asarray(self.graph("rhythm_predictor").run({
            "semantic": np.ascontiguousarray(semantic, np.float32),
            "scene_cut": np.ascontiguousarray(scene_cut, np.float32),
            "pseudo_beat": np.ascontiguousarray(pseudo_beat, np.float32),
            "cls": np.ascontiguousarray(cls, np.int64).reshape(-1)}), np.float32)

    def denoise(self, x, t, semantic, rhythm, colour, cls, seconds_start, seconds_total,
                cues=None):
        B = x.shape[0]
        f = np.float32
        feeds = {} if cues is None else {"cues": np.ascontiguousarray(cues, f)}
        return np.asarray(self.graph("dit").run({**feeds,
            "x": np.ascontiguousarray(x, f),
            "t": np.ascontiguousarray(np.broadcast_to(np.asarray(t, f).reshape(-1), (B,))),
            "semantic": np.ascontiguousarray(semantic, f),
            "rhythm": np.ascontiguousarray(np.asarray(rhythm, f).reshape(B, -1, 1)),
            "colour": np.ascontiguousarray(colour, f),
            "cls": np.ascontiguousarray(cls, np.int64).reshape(-1),
            "seconds_start": np.ascontiguousarray(seconds_start, f).reshape(-1),
            "seconds_total": np.ascontiguousarray(seconds_total, f).reshape(-1)}), f)

    def decode(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(self.graph("decoder").run({"z": np.ascontiguousarray(z, np.float32)}),
                          np.float32)

    def encode_latent(self, audio: np.ndarray) -> np.ndarray:
        """audio [B, ch, N] -> latent mean [B, C, ceil(N / hop)] (unscaled), if exported."""
        g = self.graph("encoder")
        if g is None:
            raise UserError(f"{self.onnx_dir}: no encoder graph in this export")
        # "audio" for the waveform family, "roll" [B, 4, 3, P, F] for the score family
        return np.asarray(g.run({g.input_names[0]: np.ascontiguousarray(audio, np.float32)}),
                          np.float32)


def _engine_runners(onnx_dir: Path, manifest: dict[str, Any], engine_cache, notes: list[str],
                    precision: str | None) -> dict[str, Any]:
    """TensorRT engine runners for the graphs the cache has a matching engine for."""
    from diffv2m.runtime import engines
    try:
        identity = engines.detect_identity()
    except engines.EnginesUnavailable as e:
        notes.append(f"TensorRT engines not used: {e}")
        return {}
    runners: dict[str, Any] = {}
    for name, g in manifest["graphs"].items():
        if name == "encoder":
            continue
        rec, reason = engines.lookup(name, g["sha256"], identity=identity,
                                     cache_dir=engine_cache, precision=precision)
        if rec is None:
            notes.append(f"{name}: no TensorRT engine ({reason}); using ONNX Runtime")
            continue
        try:
            from diffv2m.runtime.tensorrt import EngineRunner
            runners[name] = EngineRunner(name, rec.path, identity=identity)
        except Exception as e:                          # failed deserialisation: rebuild
            notes.append(f"{name}: TensorRT engine {rec.path} unusable "
                         f"({str(e).splitlines()[0][:160]}); rebuild with 'diffv2m engines build'")
    return runners


def load_runtime(onnx_dir: str | os.PathLike | None = None, *, threads: int | None = None,
                 prefer: tuple[str, ...] | list[str] | str | None = None,
                 cache_dir: str | os.PathLike | None = None, optimized_cache: bool = True,
                 engines: bool | None = None, engine_cache: str | os.PathLike | None = None,
                 precision: str | None = None) -> OrtBackend:
    """Open the exported graphs in ``onnx_dir`` (default: the embedded default model's, the
    score model, as ``diffv2m generate`` uses: the OTIO bridge, the panel and Blender too).

    ``prefer``: execution providers to try, best first (full or short names: "tensorrt",
    "cuda", "cpu"); the CPU provider is always the last fallback.  ``threads``: intra-op
    threads (default: physical cores).  ``cache_dir``: where optimised graphs are kept
    (default ``$DIFFV2M_CACHE`` or ``~/.cache/diffv2m``).  ``engines``: use TensorRT engines
    from ``engine_cache`` when they match this GPU (default: when tensorrt is installed).
    """
    import importlib.util
    from diffv2m.cache import default_cache_dir
    if onnx_dir is None:
        from diffv2m.assets import DEFAULT_MODEL, model_onnx_dir
        onnx_dir = model_onnx_dir(DEFAULT_MODEL)
    onnx_dir = Path(onnx_dir)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    manifest = validate_manifest(onnx_dir, cache_dir=cache if optimized_cache else None)
    try:
        import onnxruntime  # noqa: F401
    except ModuleNotFoundError:
        raise UserError("the ONNX runtime needs the 'onnxruntime' package "
                        "(pip install onnxruntime, or onnxruntime-gpu)") from None
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1 (got {threads})")
    threads = threads or physical_cores()
    order = provider_order(prefer)
    notes: list[str] = []
    if engines is None:
        engines = importlib.util.find_spec("tensorrt") is not None and (
            prefer is None or "tensorrt" in str(prefer).lower())
        if not engines:
            notes.append("TensorRT engines not used: the tensorrt package is not installed"
                         if importlib.util.find_spec("tensorrt") is None
                         else "TensorRT engines not used: not among the preferred backends")
    graphs: dict[str, Any] = {}
    if engines:
        graphs.update(_engine_runners(onnx_dir, manifest, engine_cache, notes, precision))

    def open_graph(name: str) -> OrtGraph:
        g = manifest["graphs"][name]
        return OrtGraph(name, onnx_dir / g["file"], g["sha256"], providers=order,
                        threads=threads, cache_dir=cache if optimized_cache else None,
                        external_data=bool(g.get("external_data")))

    for name in ("dit", "decoder"):         # every take runs these; the others open on use
        if name not in graphs:
            graphs[name] = open_graph(name)
    backend = OrtBackend(onnx_dir, manifest, graphs, threads=threads, notes=notes,
                         open_graph=open_graph,
                         conditions_identity=_conditions_identity(manifest, graphs, order,
                                                                  threads))
    if "mood_reader" in manifest:
        from diffv2m.features.mood import MoodReader
        backend.mood_reader = MoodReader.load(onnx_dir / manifest["mood_reader"]["file"])
    return backend


def _conditions_identity(manifest: dict[str, Any], graphs: dict[str, Any], order: list[str],
                         threads: int) -> str | None:
    """What the semantic tokens and the predicted ODF of a video depend on, on this runtime:
    the two graphs, the model's config, onnxruntime, the CPU and the thread count.  Only for
    the CPU provider (on a GPU they are quick, and which provider ends up running a graph is
    known only once it is open)."""
    import hashlib
    import json
    import onnxruntime as ort
    names = ("semantic_encoder", "rhythm_predictor")
    if order != ["CPUExecutionProvider"] or any(n in graphs for n in names):
        return None
    blob = json.dumps({"graphs": {n: manifest["graphs"].get(n, {}).get("sha256") for n in names},
                       "config": manifest["config"], "onnxruntime": ort.__version__,
                       "cpu": _cpu_tag(), "threads": int(threads)}, sort_keys=True, default=str)
    return "ort-cpu-" + hashlib.sha256(blob.encode()).hexdigest()[:24]
