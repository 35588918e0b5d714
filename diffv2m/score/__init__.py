"""The score latent family: symbolic music (note events, piano rolls) instead of waveforms.

Torch-free modules here (events, rendering) are used by the runtime; the score autoencoder's
network lives in ``diffv2m.models``.
"""
