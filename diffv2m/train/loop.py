"""The one training loop every trainer runs: resume, schedule, step, EMA, log, checkpoint.

A trainer builds its model and optimiser and says how one step's loss is computed; this loop
does the rest, the same way for all of them:

    start = load_run(...)                    resume from RUN_DIR/last.safetensors (0 if none)
    for step in range(start, steps):
        set_lr(opt, warmup_cosine(lr, step, steps, warmup))
        out = step_loss(net, step, step_generator(seed, step))   # this rank's share
        backward, clip the gradient norm to 1, opt.step()
        out.after()                          # e.g. the discriminator's own update
        ema.update(model, step)
        log the losses (mean over ranks); checkpoint every ``save_every`` steps and at the end

``net`` is ``forward`` (default: ``model``) wrapped for DDP when run under torchrun; ``model``
is what the checkpoint and the EMA hold.  Randomness comes only from the step's generator,
so a resumed run repeats the uninterrupted one bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from . import distributed
from .schedule import set_lr, warmup_cosine
from .state import EMA, LossLog, load_run, save_run, step_generator


@dataclass
class StepLoss:
    """What a trainer's step returns: the loss to minimise and the figures to log."""
    loss: torch.Tensor
    parts: dict[str, float]                         # logged as their mean over ranks
    notes: dict[str, float] = field(default_factory=dict)   # logged as they are, after "lr"
    after: Callable[[], dict[str, float]] | None = None     # run after the optimiser's step;
    #                                                         its figures join ``parts``


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
          step_loss: Callable[[torch.nn.Module, int, torch.Generator], StepLoss], *,
          run_dir: Path, steps: int, lr: float, warmup: int = 100, ema_decay: float,
          seed: int, save_every: int, info: distributed.DistInfo, run_info: dict[str, Any],
          forward: torch.nn.Module | None = None, desc: str = "train",
          show: dict[str, str] | None = None) -> EMA:
    """Train ``model`` to ``steps`` (resuming a run in ``run_dir``); returns its EMA.

    ``run_info`` goes into every checkpoint's state (config, arguments); ``show`` names log
    figures for the progress bar beside the loss (label -> key).
    """
    from tqdm import tqdm
    params = [p for g in optimizer.param_groups for p in g["params"]]
    ema = EMA(model, decay=ema_decay)
    start = load_run(run_dir, model, ema, optimizer)
    log = LossLog(run_dir / "loss.jsonl", start) if info.main else None
    net = distributed.wrap(forward if forward is not None else model, info)

    bar = tqdm(total=steps, initial=start, desc=desc, unit="step", disable=not info.main)
    for step in range(start, steps):
        rate = warmup_cosine(lr, step, steps, warmup)
        set_lr(optimizer, rate)
        out = step_loss(net, step, step_generator(seed, step))
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        parts = dict(out.parts)
        if out.after is not None:
            parts.update(out.after())
        ema.update(model, step)
        row = {"step": step + 1, "loss": distributed.all_mean(out.loss.item(), info),
               **{k: distributed.all_mean(float(v), info) for k, v in parts.items()},
               "lr": rate, **out.notes}
        if info.main:
            log.write(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4f}",
                            **{label: f"{row[key]:.4f}" for label, key in (show or {}).items()})
        done = step + 1
        if done % save_every == 0 or done == steps:
            if info.main:
                save_run(run_dir, done, model, ema, optimizer, run_info)
            distributed.barrier(info)
    bar.close()
    return ema
