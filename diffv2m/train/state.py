"""Training state on disk: EMA weights, resumable checkpoints (safetensors) and a loss log.

A run directory holds ``last.safetensors`` (model + EMA + optimizer tensors, written
atomically, with the run state in its metadata), ``state.json`` (the same state, step, config,
optimizer scalars, readable) and ``loss.jsonl`` (one line per step). The state is read from the
weights file itself, so a kill between the two renames cannot pair step N's weights with step
N-k's state.  Randomness is derived from (seed, step), so a resumed run repeats the exact loss curve
it would have had without the interruption.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path, atomic_write_text


class EMA:
    """Exponential moving average of a module's parameters: theta_ema <- d theta_ema + (1-d) theta."""

    def __init__(self, module: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))      # warm-up: follow closely at first
        torch._foreach_lerp_(list(self.shadow.parameters()),
                             [p.detach() for p in module.parameters()], 1.0 - d)
        for e, b in zip(self.shadow.buffers(), module.buffers()):
            e.copy_(b)


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The random stream of one training step (and rank): resumption repeats it exactly."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 131 + rank)


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {"param_groups": sd["param_groups"], "state": {}}
    for pid, st in sd["state"].items():
        scalars["state"][str(pid)] = {}
        for k, v in st.items():
            if torch.is_tensor(v) and v.dim() > 0:
                tensors[f"opt.{pid}.{k}"] = v.contiguous()
            else:
                scalars["state"][str(pid)][k] = float(v) if torch.is_tensor(v) else v
    return tensors, scalars


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict, scalars: dict) -> None:
    state = {}
    for pid, st in scalars["state"].items():
        s = {k: torch.tensor(v) for k, v in st.items()}
        for name, t in tensors.items():
            _, p, k = name.split(".", 2)
            if p == pid:
                s[k] = t
        state[int(pid)] = s
    opt.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})


_STATE_KEY = "diffv2m_run_state"      # last.safetensors metadata: the state.json text


def save_run(run_dir: Path, step: int, model: torch.nn.Module, ema: EMA | None,
             opt: torch.optim.Optimizer, info: dict[str, Any]) -> None:
    """Write the resumable state of a run (atomically: a kill never corrupts it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().contiguous().cpu()
                        for k, v in ema.shadow.state_dict().items()})
    opt_t, opt_s = _flatten_optimizer(opt)
    tensors.update({k: v.cpu() for k, v in opt_t.items()})
    state = json.dumps({"step": step, "optimizer": opt_s, **info}, indent=1)
    with atomic_path(run_dir / "last.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={_STATE_KEY: state})
    atomic_write_text(run_dir / "state.json", state)


def _run_state(weights: Path, state_path: Path) -> dict[str, Any] | None:
    """The state saved with the weights (authoritative); ``state.json`` for runs saved before
    the state went into the weights' metadata."""
    with safe_open(str(weights), "pt") as f:
        meta = f.metadata() or {}
    if _STATE_KEY in meta:
        return json.loads(meta[_STATE_KEY])
    return json.loads(state_path.read_text()) if state_path.exists() else None


def load_run(run_dir: Path, model: torch.nn.Module, ema: EMA | None,
             opt: torch.optim.Optimizer) -> int:
    """Restore a run written by :func:`save_run`; returns the step to continue from (0 if none)."""
    state_path, weights = run_dir / "state.json", run_dir / "last.safetensors"
    if not weights.exists():
        return 0
    state = _run_state(weights, state_path)
    if state is None:
        return 0
    tensors = load_file(str(weights))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.shadow.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    _restore_optimizer(opt, {k: v for k, v in tensors.items() if k.startswith("opt.")},
                       state["optimizer"])
    return int(state["step"])


class LossLog:
    """Append-only JSON-lines loss log; on resume, lines past the checkpoint are dropped."""

    def __init__(self, path: Path, resume_step: int):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = path.read_text().splitlines() if path.exists() else []
        kept = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= resume_step]
        atomic_write_text(path, "".join(ln + "\n" for ln in kept))

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]
