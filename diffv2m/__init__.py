"""Diff-V2M Studio: video-to-music generation with a hierarchically conditioned latent DiT.

Import map (one direction): ``diffv2m.plugin`` -> ``diffv2m.runtime`` -> the torch-free
core (``media``, ``features``, ``diffusion``, ``synthesis``, ``config``).  Torch lives in
``diffv2m.models``, ``diffv2m.train``, ``diffv2m.pipeline`` and ``diffv2m.export.onnx``.
"""

__version__ = "0.1.0"
