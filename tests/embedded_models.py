"""The embedded score model's exported graphs, and the mark for tests that need them (a
checkout where they are not built skips those tests with one reason)."""
import pytest

from diffv2m import assets

SCORE_ONNX = assets.model_onnx_dir("score")
needs_score_model = pytest.mark.skipif(not (SCORE_ONNX / "manifest.json").exists(),
                                       reason="the embedded score model's ONNX graphs are "
                                              "not built")
