"""Convert the published Diff-V2M checkpoint into this project's ``paper`` model.

The published checkpoint (a PyTorch Lightning file of the training wrapper) holds, under
``state_dict``:

* ``diffusion.<name>`` for every tensor of the model (1,515 tensors: DiT ``model.model.*``,
  conditioners ``conditioner.conditioners.*``, Oobleck VAE ``pretransform.model.*``);
* ``diffusion_ema.ema_model.<name without its leading "model.">`` for the EMA copy of the DiT
  (the reference notes that inference actually samples with the online weights);
* training-only extras: ``diffusion_ema.initted``, ``diffusion_ema.step``, ``losses.losses.*``.

A flat model-level state dict (``export_model()`` layout, torch file or .safetensors, names
with no ``diffusion.`` prefix) is read too.

Every published name is mapped onto ours by :data:`RULES`, an ordered table of name patterns
(first match wins) that is also used backwards (:func:`to_published`) by the tests.
Placeholders in a pattern:

============  ===============================================  ==============================
placeholder   matches                                          translated
============  ===============================================  ==============================
``{i}`` ...   a layer index (``\\d+``)                          kept
``{rest}``    the rest of the name                             kept
``{s}``       ``semantic|rhythm|color``                         kept
``{w}``       ``weight|bias``                                  kept
``{fusion}``  ``t_linear``, ``FiLM_{gamma,beta}_{sem,rhy}``     kept
``{part}``    ``encoder|decoder``                              kept
``{leaf}``    a VAE tensor                                     :data:`VAE_LEAVES`: old-style
                                                               weight norm ``weight_g/_v`` ->
                                                               ``parametrizations.weight.
                                                               original0/1``; SnakeBeta
                                                               ``alpha/beta`` (log scale) ->
                                                               ``log_alpha/log_beta``
============  ===============================================  ==============================

Buffers are tensors like any other here: the LayerNorm ``beta`` buffers and the rotary
``inv_freq`` buffers keep their names.  When the target autoencoder has no weight-norm
parametrization (``autoencoder.weight_norm = False``) the pair is folded into
``weight = g * v / ||v||`` (norm over all dims but 0, as ``torch.nn.utils.weight_norm``).
Snake parameters stored as ``[1, C, 1]`` are reshaped to ``[C]``.

Nothing is written unless every published tensor is accounted for (mapped, or a known unused
tensor) and every tensor of our model is supplied with the right shape.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch

from ..config import ModelConfig, paper_config
from ..errors import UserError

# ---------------------------------------------------------------- the name table

MODEL_PREFIX = "diffusion."
EMA_PREFIX = "diffusion_ema.ema_model."
VAE_PREFIX = "pretransform.model."
#: training-only tensors of the Lightning wrapper: read past, never converted
TRAINING_EXTRAS = (r"diffusion_ema\.initted", r"diffusion_ema\.step", r"losses\.losses\.\d+\.\w+")

#: VAE leaf tensor: published name <-> ours
VAE_LEAVES = {
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
    "alpha": "log_alpha",          # SnakeBeta with alpha_logscale: exp(alpha) in its forward
    "beta": "log_beta",
    "bias": "bias",
    "weight": "weight",
}

_PLACEHOLDERS = {
    "i": r"\d+", "j": r"\d+", "k": r"\d+",
    "rest": r".+",
    "s": r"semantic|rhythm|color",
    "w": r"weight|bias",
    "fusion": r"t_linear|FiLM_(?:gamma|beta)_(?:sem|rhy)",
    "part": r"encoder|decoder",
}
_TRANSLATE = {"leaf": (VAE_LEAVES, {v: k for k, v in VAE_LEAVES.items()})}


@dataclass(frozen=True)
class Rule:
    """``published`` pattern -> ``ours`` pattern (``None``: a known unused tensor, dropped)."""
    published: str
    ours: str | None
    why: str = ""


#: Ordered (first match wins, in both directions).
RULES: tuple[Rule, ...] = (
    Rule("conditioner.conditioners.{s}.proj_out.{w}", None,
         "base-class projection never used by the published forward"),
    Rule("conditioner.conditioners.semantic.extractor.{rest}", "rhythm_predictor.{rest}",
         "RhythmExtractor inside the semantic conditioner -> our RhythmPredictor"),
    Rule("conditioner.conditioners.class.{rest}", "dit.conditioner.conditioners.cls.{rest}",
         "'class' is a Python keyword: ours is 'cls'"),
    Rule("conditioner.conditioners.{rest}", "dit.conditioner.conditioners.{rest}",
         "conditioners live inside our DiT"),
    Rule("model.model.transformer.layers.{i}.{fusion}.{rest}",
         "dit.transformer.layers.{i}.fusion.{fusion}.{rest}",
         "FiLM fusion parameters sit in a 'fusion' submodule"),
    Rule("model.model.{rest}", "dit.{rest}", "DiT body"),
    Rule("pretransform.model.{part}.layers.{i}.layers.{j}.layers.{k}.{leaf}",
         "autoencoder.{part}.{i}.{j}.net.{k}.{leaf}", "Oobleck residual unit"),
    Rule("pretransform.model.{part}.layers.{i}.layers.{j}.{leaf}",
         "autoencoder.{part}.{i}.{j}.{leaf}", "Oobleck encoder/decoder block"),
    Rule("pretransform.model.{part}.layers.{i}.{leaf}", "autoencoder.{part}.{i}.{leaf}",
         "Oobleck top-level conv / Snake"),
)


def _compile(pattern: str, side: int) -> re.Pattern:
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", pattern):
        out.append(re.escape(pattern[pos:m.start()]))
        name = m.group(1)
        if name in _TRANSLATE:
            table = _TRANSLATE[name][0]
            options = table.keys() if side == 0 else table.values()
            alt = "|".join(re.escape(o) for o in sorted(options, key=len, reverse=True))
        else:
            alt = _PLACEHOLDERS[name]
        out.append(f"(?P<{name}>{alt})")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out) + r"\Z")


_COMPILED = [(r, _compile(r.published, 0), _compile(r.ours, 1) if r.ours else None)
             for r in RULES]


def _fill(pattern: str, groups: Mapping[str, str], forward: bool) -> str:
    def sub(m):
        name = m.group(1)
        val = groups[name]
        if name in _TRANSLATE:
            table = _TRANSLATE[name][0 if forward else 1]
            val = table[val]
        return val
    return re.sub(r"\{(\w+)\}", sub, pattern)


class _Drop:
    """Marker: a known unused published tensor."""

    def __init__(self, rule: Rule):
        self.rule = rule

    def __repr__(self) -> str:
        return f"<dropped: {self.rule.why}>"


def to_ours(published: str) -> str | _Drop | None:
    """Our name for a published model-level name; a :class:`_Drop` for known unused tensors;
    ``None`` when no rule matches."""
    for rule, pub_re, _ in _COMPILED:
        m = pub_re.match(published)
        if m:
            return _Drop(rule) if rule.ours is None else _fill(rule.ours, m.groupdict(), True)
    return None


def to_published(ours: str) -> str | None:
    """The published model-level name of one of our state-dict names (the table backwards)."""
    for rule, _, ours_re in _COMPILED:
        if ours_re is None:
            continue
        m = ours_re.match(ours)
        if m:
            return _fill(rule.published, m.groupdict(), False)
    return None


def known_unused(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Published tensors that the published forward never uses (dropped), with their shapes."""
    d = config.dit
    C = d.cond_token_dim
    ins = {"semantic": config.semantic_dim, "rhythm": 1, "color": config.colour_dim}
    out: dict[str, tuple[int, ...]] = {}
    for s, n_in in ins.items():
        out[f"conditioner.conditioners.{s}.proj_out.weight"] = (C, n_in)
        out[f"conditioner.conditioners.{s}.proj_out.bias"] = (C,)
    return out


# ---------------------------------------------------------------- reading

def _load_any(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file
            return dict(load_file(str(path)))
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc).lower() and "zip" not in str(exc).lower():
                raise
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except UserError:
        raise
    except Exception as exc:           # not a torch file, pickle refused by weights_only, ...
        msg = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
        msg = msg.splitlines()[0][:200] if msg else ""
        hint = ""
        if "weights_only" in str(exc) or "Unpickl" in type(exc).__name__:
            hint = ("; it holds objects other than tensors: if you trust it, save its "
                    "'state_dict' as .safetensors and convert that")
        raise UserError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {msg}){hint}"
                        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise UserError(f"{path}: holds no state dict")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise UserError(f"{path}: state dict entry {bad[0]!r} is not a tensor")
    return obj


@dataclass
class SourceSplit:
    """The published file sorted into model-level tensors and what is read past."""
    tensors: dict[str, torch.Tensor]
    layout: str                                     # "lightning" or "flat"
    ema_used: int = 0
    ema_ignored: int = 0
    extras: list[str] = field(default_factory=list)
    leftover: list[str] = field(default_factory=list)


def split_source(sd: Mapping[str, torch.Tensor], *, use_ema: bool = False) -> SourceSplit:
    """Strip the wrapper prefixes; pick the online (default) or EMA weights for the DiT."""
    extras_re = re.compile("|".join(f"(?:{p})" for p in TRAINING_EXTRAS) + r"\Z")
    if not any(k.startswith(MODEL_PREFIX) for k in sd):
        if use_ema:
            raise UserError("--use-ema: the checkpoint has no 'diffusion_ema.ema_model.' tensors "
                            "(a flat model-level state dict)")
        return SourceSplit(dict(sd), "flat")
    out = SourceSplit({}, "lightning")
    ema: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.startswith(MODEL_PREFIX):
            out.tensors[k[len(MODEL_PREFIX):]] = v
        elif k.startswith(EMA_PREFIX):
            ema["model." + k[len(EMA_PREFIX):]] = v
        elif extras_re.match(k):
            out.extras.append(k)
        else:
            out.leftover.append(k)
    if use_ema:
        if not ema:
            raise UserError("--use-ema: the checkpoint has no 'diffusion_ema.ema_model.' tensors")
        online_dit = [k for k in out.tensors if k.startswith("model.")]
        for k in online_dit:
            del out.tensors[k]
        out.tensors.update(ema)
        out.ema_used = len(ema)
    else:
        # the EMA copy must mirror the online DiT; anything else in it is a leftover
        for k in ema:
            if k in out.tensors:
                out.ema_ignored += 1
            else:
                out.leftover.append(EMA_PREFIX + k[len("model."):])
    return out


def vae_tensors(path: Path) -> dict[str, torch.Tensor]:
    """An external Oobleck VAE (Stable Audio Open layout): tensors under
    ``pretransform.model.`` (a whole SAO model file), or bare ``encoder.*``/``decoder.*``."""
    sd = _load_any(path)
    if any(k.startswith(MODEL_PREFIX) for k in sd):
        sd = {k[len(MODEL_PREFIX):]: v for k, v in sd.items() if k.startswith(MODEL_PREFIX)}
    out = {k: v for k, v in sd.items() if k.startswith(VAE_PREFIX)}
    if not out:
        out = {VAE_PREFIX + k: v for k, v in sd.items()
               if k.startswith(("encoder.", "decoder."))}
    if not out:
        raise UserError(f"{path}: no VAE tensors (expected names under 'pretransform.model.' "
                        "or 'encoder.'/'decoder.')")
    return out


# ---------------------------------------------------------------- mapping

def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``g * v / ||v||`` with the norm over every dim but 0 (old-style ``weight_norm``, dim 0)."""
    dims = tuple(range(1, v.dim()))
    norm = v.float().pow(2).sum(dim=dims, keepdim=True).sqrt()
    return (g.float() * v.float() / norm).to(v.dtype)


@dataclass
class Mapping_:
    """Result of mapping a published model-level dict onto a target state-dict layout."""
    tensors: dict[str, torch.Tensor]                # ours name -> tensor (shapes checked)
    dropped: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)      # no rule
    not_in_model: list[str] = field(default_factory=list)   # "pub -> ours" not in our model
    shape_errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)        # ours names nothing supplied
    folded: int = 0
    reshaped: int = 0

    @property
    def ok(self) -> bool:
        return not (self.unmatched or self.not_in_model or self.shape_errors or self.missing)


def map_tensors(published: Mapping[str, Any], expected: Mapping[str, torch.Size | tuple],
                ) -> Mapping_:
    """Map ``published`` (model-level names -> tensors, or anything with ``.shape``) onto
    ``expected`` (our names -> shapes).  Works on meta tensors and shape-only stand-ins."""
    res = Mapping_({})
    for pub, value in published.items():
        ours = to_ours(pub)
        if ours is None:
            res.unmatched.append(pub)
            continue
        if isinstance(ours, _Drop):
            res.dropped.append(pub)
            continue
        res.tensors[ours] = value
    # old-style weight norm into a model without the parametrization: fold
    wn = ".parametrizations.weight.original"
    for name in [n for n in res.tensors if n.endswith(wn + "0")]:
        base = name[: -len(wn + "0")]
        if name not in expected and base + ".weight" in expected and base + wn + "1" in res.tensors:
            g, v = res.tensors.pop(name), res.tensors.pop(base + wn + "1")
            res.tensors[base + ".weight"] = (fold_weight_norm(g, v) if isinstance(v, torch.Tensor)
                                             and v.device.type != "meta" else _Shape(v.shape))
            res.folded += 1
    for ours in list(res.tensors):
        value = res.tensors[ours]
        if ours not in expected:
            res.not_in_model.append(f"{to_published(ours) or ours} -> {ours}")
            del res.tensors[ours]
            continue
        want, got = tuple(expected[ours]), tuple(value.shape)
        if got != want:
            snake = ours.endswith(("log_alpha", "log_beta"))
            if snake and _numel(got) == _numel(want) and [s for s in got if s != 1] == \
                    [s for s in want if s != 1]:
                res.tensors[ours] = value.reshape(want) if isinstance(value, torch.Tensor) \
                    else _Shape(want)
                res.reshaped += 1
            else:
                res.shape_errors.append(f"{ours}: published {list(got)} vs ours {list(want)}")
                del res.tensors[ours]
    res.missing = [k for k in expected if k not in res.tensors
                   and k not in {s.split(": ")[0] for s in res.shape_errors}]
    return res


class _Shape:
    """A shape-only stand-in for a tensor (name-mapping checks at full size)."""

    def __init__(self, shape):
        self.shape = torch.Size(shape)

    def reshape(self, shape):
        return _Shape(shape)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _first(items: Iterable[str], n: int = 3) -> str:
    items = list(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


# ---------------------------------------------------------------- config and model

def official_config() -> ModelConfig:
    """The paper config with the released code's rhythm->emotion wiring (parity with the
    published weights); the quirks (prepend, published norms, seconds tokens, no context
    positions, no rhythm sigmoid) are already part of :func:`paper_config`."""
    cfg = paper_config()
    return replace(cfg, name="paper-official", dit=replace(cfg.dit, published_wiring=True))


def expected_state(config: ModelConfig) -> dict[str, torch.Size]:
    """Our state-dict names and shapes for ``config`` (built on the meta device)."""
    from ..models.diffv2m import DiffV2M
    with torch.device("meta"):
        model = DiffV2M(config)
    return {k: v.shape for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- CLIP weights

#: a few tensors that identify an open_clip ViT-B/32 image tower
CLIP_VIT_B32 = {
    "visual.conv1.weight": (768, 3, 32, 32),
    "visual.class_embedding": (768,),
    "visual.positional_embedding": (50, 768),
    "visual.proj": (768, 512),
}


def check_clip(path: Path, model_name: str = "ViT-B-32") -> dict[str, torch.Tensor]:
    """Read a local open_clip ViT-B/32 state dict and check that it is one."""
    from ..features.semantic import load_state_dict
    sd = load_state_dict(path)
    problems = []
    for k, shape in CLIP_VIT_B32.items():
        if k not in sd:
            problems.append(f"no {k}")
        elif tuple(sd[k].shape) != shape:
            problems.append(f"{k} is {list(sd[k].shape)}, expected {list(shape)}")
    blocks = {m.group(1) for k in sd
              if (m := re.match(r"visual\.transformer\.resblocks\.(\d+)\.", k))}
    if not problems and len(blocks) != 12:
        problems.append(f"{len(blocks)} image transformer blocks, expected 12")
    if problems:
        raise UserError(f"{path}: not an open_clip {model_name} state dict ({_first(problems, 2)})")
    return {k: v.detach().contiguous() for k, v in sd.items()}


# ---------------------------------------------------------------- the conversion

def convert_official(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, *,
                     vae: str | os.PathLike | None = None, clip: str | os.PathLike | None = None,
                     use_ema: bool = False, config: ModelConfig | None = None,
                     progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Convert ``checkpoint`` into ``out_dir/model.safetensors`` + ``out_dir/config.json``
    (+ ``out_dir/clip.safetensors`` with ``clip``).  Returns the conversion report.
    Raises :class:`UserError` (and writes nothing) unless every tensor is accounted for."""
    from ..models.checkpoint import save_checkpoint
    from ..models.diffv2m import DiffV2M

    ckpt = Path(checkpoint)
    out = Path(out_dir)
    config = config or official_config()
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    if progress:
        progress("read", 0, 4)
    src = split_source(_load_any(ckpt), use_ema=use_ema)
    vae_source = "checkpoint"
    if vae is not None:
        vt = vae_tensors(Path(vae))
        for k in [k for k in src.tensors if k.startswith(VAE_PREFIX)]:
            del src.tensors[k]
        src.tensors.update(vt)
        vae_source = Path(vae).name
    clip_sd = check_clip(Path(clip), config.semantic.clip_model) if clip is not None else None

    if progress:
        progress("map", 1, 4)
    with torch.device("meta"):
        model = DiffV2M(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    res = map_tensors(src.tensors, expected)
    problems = []
    if src.leftover:
        problems.append(f"{len(src.leftover)} unknown wrapper tensor(s): {_first(src.leftover)}")
    if res.unmatched:
        problems.append(f"{len(res.unmatched)} tensor(s) no rule maps: {_first(res.unmatched)}")
    if res.not_in_model:
        problems.append(f"{len(res.not_in_model)} tensor(s) our model lacks: "
                        f"{_first(res.not_in_model)}")
    if res.shape_errors:
        problems.append(f"{len(res.shape_errors)} shape mismatch(es): {_first(res.shape_errors)}")
    if res.missing:
        pub = [f"{to_published(k) or k}" for k in res.missing]
        problems.append(f"{len(res.missing)} tensor(s) missing from the checkpoint: {_first(pub)}")
    if problems:
        raise UserError(f"{ckpt}: refusing to write a partial model: " + "; ".join(problems))

    if progress:
        progress("load", 2, 4)
    state = {}
    for k, v in res.tensors.items():
        state[k] = v.to(torch.float32) if v.is_floating_point() else v   # the model is fp32
    model.load_state_dict(state, strict=True, assign=True)

    n_params = sum(p.numel() for p in model.parameters())
    report = {
        "source": ckpt.name, "layout": src.layout,
        "weights": "ema" if use_ema else "online",
        "source_tensors": len(src.tensors) + src.ema_ignored + len(src.extras),
        "converted_tensors": len(state),
        "parameters": n_params,
        "dropped_unused": sorted(res.dropped),
        "ignored_training_extras": sorted(src.extras),
        "ema_tensors_ignored": src.ema_ignored, "ema_tensors_used": src.ema_used,
        "weight_norm_folded": res.folded, "snake_reshaped": res.reshaped,
        "vae": vae_source,
    }
    if progress:
        progress("write", 3, 4)
    out.mkdir(parents=True, exist_ok=True)
    from ..atomic import atomic_path
    if clip_sd is not None:
        from safetensors.torch import save_file
        with atomic_path(out / "clip.safetensors") as tmp:
            save_file(clip_sd, str(tmp), metadata={"format": "open_clip",
                                                   "model": config.semantic.clip_model})
        report["semantic_weights"] = "clip.safetensors"
    save_checkpoint(out / "model.safetensors", model, config, meta={"converted": report})
    with atomic_path(out / "config.json") as tmp:
        Path(tmp).write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    if progress:
        progress("write", 4, 4)
    return report
