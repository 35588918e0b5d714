"""Torch networks of Diff-V2M (the only torch-importing package besides train/export/pipeline).

Submodules: ``fusion``, ``conditioning``, ``dit``, ``rhythm_predictor``, ``semantic_cnn``,
``autoencoder``, ``diffv2m`` (the container), ``checkpoint``.  Import them directly; this
package file imports nothing so that ``import diffv2m.models.X`` stays cheap.
"""
