"""v-objective diffusion: cosine schedule, conversions, samplers and training targets.

Written once for ``np.ndarray`` and ``torch.Tensor``: the code below uses arithmetic only
(plus ``cos``/``sin`` through :func:`_sin`, which dispatches on the array's own methods), and
never imports torch.  Time ``t`` runs from 1 (pure noise) to 0 (data).

Schedule (stable-audio-tools' v-diffusion)::

    alpha(t) = cos(pi t / 2),   sigma(t) = sin(pi t / 2),   x_t = alpha x0 + sigma eps
    v   = alpha eps - sigma x0
    x0  = alpha x_t - sigma v
    eps = sigma x_t + alpha v

``alpha`` is computed as ``sin(pi (1 - t) / 2)`` so that both ends are exact in floating point:
t = 1 gives alpha = 0, sigma = 1 and t = 0 gives alpha = 1, sigma = 0.

The probability-flow ODE in this parametrisation is simply ``dx/dt = (pi / 2) v``.

Samplers take ``model(x, t: float) -> v`` and a descending grid ``ts`` (:func:`timesteps`)
and return the final sample (x at ``ts[-1]``; the data estimate when ``ts[-1] == 0``).
``callback(i, n)`` runs after step ``i`` of ``n`` and may raise to stop sampling.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

Array = Any  # np.ndarray or torch.Tensor (or a Python float for scalar helpers)
Model = Callable[[Array, float], Array]
Callback = Callable[[int, int], None] | None

HALF_PI = 0.5 * math.pi


# ---------------------------------------------------------------- schedule and conversions

def _sin(x: Array) -> Array:
    """sin for Python floats, numpy arrays and torch tensors (dispatch on the value)."""
    if isinstance(x, (int, float)):
        return math.sin(x)
    if isinstance(x, (np.ndarray, np.generic)):
        return np.sin(x)
    return x.sin()  # torch.Tensor (or any array type with a .sin() method)


def alpha_sigma(t: Array) -> tuple[Array, Array]:
    """(alpha, sigma) = (cos(pi t/2), sin(pi t/2)); exact 0/1 at t = 0 and t = 1."""
    return _sin(HALF_PI * (1 - t)), _sin(HALF_PI * t)


def log_snr(t: float) -> float:
    """lambda(t) = log(alpha / sigma) for a scalar t; -inf at t = 1, +inf at t = 0."""
    alpha, sigma = alpha_sigma(float(t))
    if alpha == 0.0:
        return -math.inf
    if sigma == 0.0:
        return math.inf
    return math.log(alpha / sigma)


def v_to_x0(x_t: Array, v: Array, t: Array) -> Array:
    """x0 = alpha x_t - sigma v."""
    alpha, sigma = alpha_sigma(t)
    return alpha * x_t - sigma * v


def v_to_eps(x_t: Array, v: Array, t: Array) -> Array:
    """eps = sigma x_t + alpha v."""
    alpha, sigma = alpha_sigma(t)
    return sigma * x_t + alpha * v


def x0_eps_to_v(x0: Array, eps: Array, t: Array) -> Array:
    """v = alpha eps - sigma x0."""
    alpha, sigma = alpha_sigma(t)
    return alpha * eps - sigma * x0


def x0_to_v(x_t: Array, x0: Array, t: Array) -> Array:
    """v from a data prediction: v = (alpha x_t - x0) / sigma (undefined at t = 0)."""
    alpha, sigma = alpha_sigma(t)
    return (alpha * x_t - x0) / sigma


def eps_to_v(x_t: Array, eps: Array, t: Array) -> Array:
    """v from a noise prediction: v = (eps - sigma x_t) / alpha (undefined at t = 1)."""
    alpha, sigma = alpha_sigma(t)
    return (eps - sigma * x_t) / alpha


def timesteps(steps: int, t_max: float = 1.0, t_min: float = 0.0) -> np.ndarray:
    """Descending grid ``[steps + 1]`` from ``t_max`` to ``t_min``, uniform in t.

    Uniform in t is the published v-diffusion grid (``linspace(1, 0, steps + 1)``); the
    cosine lives in :func:`alpha_sigma`, so the grid is cosine-spaced in alpha and sigma.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 <= t_min < t_max <= 1.0:
        raise ValueError(f"need 0 <= t_min < t_max <= 1, got t_min={t_min}, t_max={t_max}")
    return np.linspace(t_max, t_min, steps + 1, dtype=np.float64)


# ---------------------------------------------------------------- samplers

def sample_euler(model: Model, x: Array, ts, *, callback: Callback = None) -> Array:
    """Euler on the probability-flow ODE dx/dt = (pi/2) v (first order; exact at t = 1)."""
    n = len(ts) - 1
    for i in range(n):
        t, t_next = float(ts[i]), float(ts[i + 1])
        v = model(x, t)
        x = x + (t_next - t) * HALF_PI * v
        if callback is not None:
            callback(i, n)
    return x


def sample_ddim(model: Model, x: Array, ts, *, callback: Callback = None) -> Array:
    """DDIM, eta = 0 (the published sampler): x_next = alpha_next x0 + sigma_next eps.

    Equivalently a rotation of (x0, eps) to the next angle; at t = 1 it is exact
    (x0 = -v, eps = x) and the step to t = 0 returns the data estimate x0.
    """
    n = len(ts) - 1
    for i in range(n):
        t, t_next = float(ts[i]), float(ts[i + 1])
        v = model(x, t)
        alpha, sigma = alpha_sigma(t)
        x0 = alpha * x - sigma * v
        eps = sigma * x + alpha * v
        alpha_next, sigma_next = alpha_sigma(t_next)
        x = alpha_next * x0 + sigma_next * eps
        if callback is not None:
            callback(i, n)
    return x


def sample_dpmpp_2m(model: Model, x: Array, ts, *, callback: Callback = None) -> Array:
    """DPM-Solver++(2M): multistep data prediction in log-SNR lambda = log(alpha / sigma).

    With h = lambda_next - lambda and x0 = alpha x - sigma v::

        r = h_prev / h
        D = (1 + 1/(2r)) x0 - (1/(2r)) x0_prev           (D = x0 on first-order steps)
        x_next = (sigma_next / sigma) x - alpha_next (exp(-h) - 1) D

    which is algebraically ``sigma_next/sigma * x + (alpha_next - alpha sigma_next/sigma) D``;
    that form stays finite at t = 1 (sigma = 1, alpha = 0, lambda = -inf), where the step
    is exactly the DDIM step.  Steps are first order when no finite h_prev exists (the first
    step, and the second one when the grid starts at t = 1: h_prev is then infinite, r = inf
    and the correction vanishes), and the final step to t = 0 returns D = x0 (k-diffusion's
    convention for sigma_next = 0).
    """
    n = len(ts) - 1
    x0_prev, h_prev = None, None
    for i in range(n):
        t, t_next = float(ts[i]), float(ts[i + 1])
        v = model(x, t)
        alpha, sigma = alpha_sigma(t)
        alpha_next, sigma_next = alpha_sigma(t_next)
        x0 = alpha * x - sigma * v
        lam, lam_next = log_snr(t), log_snr(t_next)
        h = lam_next - lam
        if sigma_next == 0.0:
            x = x0
        else:
            d = x0
            if x0_prev is not None and math.isfinite(h_prev) and math.isfinite(h):
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            x = (sigma_next / sigma) * x + (alpha_next - alpha * sigma_next / sigma) * d
        x0_prev, h_prev = x0, h
        if callback is not None:
            callback(i, n)
    return x


SAMPLERS: dict[str, Callable[..., Array]] = {
    "euler": sample_euler,
    "ddim": sample_ddim,
    "dpmpp-2m": sample_dpmpp_2m,
}


# ---------------------------------------------------------------- guidance and noise

def cfg_combine(v_cond: Array, v_uncond: Array, scale: float) -> Array:
    """Classifier-free guidance: v_uncond + scale (v_cond - v_uncond).

    Written as v_cond + (scale - 1)(v_cond - v_uncond), the same value, so that scale 1
    returns v_cond bit for bit.
    """
    return v_cond + (scale - 1.0) * (v_cond - v_uncond)


def initial_noise(seed: int, shape: tuple[int, ...], window: int = 0) -> np.ndarray:
    """Standard normal float32 noise from PCG64(SeedSequence([seed, window])).

    Noise always comes from numpy, so the torch and ONNX paths start from the same x_T;
    each window of a long piece gets its own stream.
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(window)])))
    return rng.standard_normal(tuple(shape), dtype=np.float32)


# ---------------------------------------------------------------- training helpers

def _per_batch(t: Array, like: Array) -> Array:
    """Reshape a per-example t [B] to [B, 1, ..., 1] to broadcast against ``like``."""
    if isinstance(t, (int, float)) or getattr(t, "ndim", 0) == 0:
        return t
    return t.reshape((-1,) + (1,) * (like.ndim - 1))


def training_target(x0: Array, eps: Array, t: Array) -> tuple[Array, Array]:
    """Noised input and v target for the v-objective.

    x0, eps: [B, ...]; t: [B] (or a scalar) in [0, 1].  Returns (x_t, v) with
    x_t = alpha x0 + sigma eps and v = alpha eps - sigma x0; the loss is mse(model(x_t, t), v).
    """
    alpha, sigma = alpha_sigma(_per_batch(t, x0))
    return alpha * x0 + sigma * eps, alpha * eps - sigma * x0


def sample_training_t(rng: np.random.Generator, batch: int) -> np.ndarray:
    """t ~ U[0, 1) per example (the published training distribution), float32 [B]."""
    return rng.random(batch, dtype=np.float32)
