"""Evaluation of generated music (torch-free).

``alignment`` (BCS/BHS, onset/cut hit rate with a random-shift baseline, visual beats),
``rhythm_metrics`` (predicted vs ground-truth ODF, motion/cut heuristic baseline),
``distribution`` (Fréchet distance, density/coverage, KL), ``embeddings`` (the weight-free
``mel-chroma-onset-stats-v1`` embedding and a registry for user-supplied networks),
``recon_metrics`` (MR-STFT, mel distance, SI-SDR), ``report`` (HTML) and ``cli``
(``diffv2m evaluate``).  Submodules are imported on demand.
"""
