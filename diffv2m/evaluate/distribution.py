"""Distances between sets of embeddings (numpy and scipy only).

* :func:`frechet_distance`: the Fréchet (2-Wasserstein) distance between Gaussian fits of
  two sets, ``||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})`` (Dowson & Landau 1982;
  used as FID by Heusel et al. 2017 and as FAD by Kilgour et al. 2019).  Covariances use
  ``ddof = 1``.  The trace of the matrix square root is computed in the symmetric form
  ``tr (S_1^{1/2} S_2 S_1^{1/2})^{1/2}`` (same eigenvalues as ``S_1 S_2``) with symmetric
  eigendecompositions and eigenvalues clipped at 0, which stays real and stable for
  rank-deficient covariances (fewer clips than dimensions) where ``scipy.linalg.sqrtm`` of
  the non-symmetric product can return complex noise.  The result is clipped at 0, so two
  identical sets give 0.
* :func:`density_coverage`: Naeem et al. 2020 ("Reliable Fidelity and Diversity Metrics for
  Generative Models", ICML).  With ``r_i`` the distance from real sample ``x_i`` to its k-th
  nearest other real sample, ``density = 1/(k M) sum_j sum_i 1[||y_j - x_i|| <= r_i]`` over
  the M fake samples ``y_j`` and ``coverage = 1/N sum_i 1[exists j: ||y_j - x_i|| <= r_i]``.
  Density is about 1 (unbounded above) and coverage about ``1 - 2^-k`` when both sets come
  from the same distribution; both fall towards 0 as the sets separate.
* :func:`kl_divergence` / :func:`mean_pairwise_kl`: the paper's KL is between a PANNs
  classifier's label distributions for each generated/reference pair.  Without a classifier,
  the same formula ``KL(p || q) = sum p log(p / q)`` is applied to any non-negative profile
  that is a distribution once normalised (the CLI uses each clip's mean chroma, a 12-bin
  pitch-class distribution): each profile is normalised to sum 1 after adding ``eps``.
  ``p`` is the reference, ``q`` the generated clip, as in the paper's evaluation.
"""
from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.spatial.distance import cdist


def _matrix(x, name: str) -> np.ndarray:
    a = np.asarray(x, np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected [n, d] embeddings, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: embeddings contain NaN or inf")
    return a


def gaussian_stats(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[d]`` and covariance ``[d, d]`` (ddof 1; zeros for a single sample)."""
    a = _matrix(x, "x")
    if len(a) == 0:
        raise ValueError("x: no samples")
    mu = a.mean(axis=0)
    if len(a) < 2:
        return mu, np.zeros((a.shape[1], a.shape[1]))
    return mu, np.atleast_2d(np.cov(a, rowvar=False, ddof=1))


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_stats(mu1, s1, mu2, s2) -> float:
    """Fréchet distance between N(mu1, s1) and N(mu2, s2) (see the module docstring)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(s1, np.float64)), np.atleast_2d(np.asarray(s2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, cov {s1.shape}/{s2.shape}")
    r1 = _psd_sqrt(s1)
    m = r1 @ s2 @ r1
    w = linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = float(np.sum(np.sqrt(np.clip(w, 0.0, None))))
    diff = mu1 - mu2
    d = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
    scale = float(np.trace(s1) + np.trace(s2) + diff @ diff)
    return 0.0 if d < 1e-10 * max(scale, 1.0) else d


def frechet_distance(x, y) -> float:
    """Fréchet distance between Gaussian fits of embeddings ``x [n, d]`` and ``y [m, d]``."""
    a, b = _matrix(x, "x"), _matrix(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"dimension mismatch: {a.shape[1]} vs {b.shape[1]}")
    return frechet_distance_from_stats(*gaussian_stats(a), *gaussian_stats(b))


def density_coverage(real, fake, k: int = 5) -> dict:
    """Naeem et al. 2020 density and coverage of ``fake`` against ``real`` (k-NN balls)."""
    r, f = _matrix(real, "real"), _matrix(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"dimension mismatch: {r.shape[1]} vs {f.shape[1]}")
    if k < 1 or len(r) <= k:
        raise ValueError(f"need more than k={k} real samples, got {len(r)}")
    if len(f) == 0:
        raise ValueError("fake: no samples")
    d_rr = cdist(r, r)
    radii = np.sort(d_rr, axis=1)[:, k]            # column 0 is the sample itself
    inside = cdist(f, r) <= radii[None, :] + 1e-12  # [M, N]
    density = float(inside.sum() / (k * len(f)))
    coverage = float(np.mean(inside.any(axis=0)))
    return {"density": density, "coverage": coverage, "k": int(k),
            "n_real": int(len(r)), "n_fake": int(len(f))}


def _distribution(p, eps: float) -> np.ndarray:
    a = np.asarray(p, np.float64)
    if np.any(a < 0):
        raise ValueError("profile has negative entries; not a distribution")
    a = a + eps
    return a / a.sum(axis=-1, keepdims=True)


def kl_divergence(p, q, eps: float = 1e-10) -> float | np.ndarray:
    """``KL(p || q)`` in nats of profiles normalised to sum 1 (last axis)."""
    pp, qq = _distribution(p, eps), _distribution(q, eps)
    kl = np.sum(pp * (np.log(pp) - np.log(qq)), axis=-1)
    return float(kl) if np.ndim(kl) == 0 else kl


def mean_pairwise_kl(reference, generated, eps: float = 1e-10) -> float:
    """Mean over pairs of ``KL(reference_i || generated_i)`` (rows are paired profiles)."""
    p, q = np.atleast_2d(reference), np.atleast_2d(generated)
    if p.shape != q.shape:
        raise ValueError(f"paired profiles differ in shape: {p.shape} vs {q.shape}")
    return float(np.mean(kl_divergence(p, q, eps)))
