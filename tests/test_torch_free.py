"""The runtime path (export.runtime, plugin, and the core they use) imports no torch."""
from __future__ import annotations

import pytest

from torch_blocker import run_without_torch

TORCH_FREE = [
    "diffv2m.cli", "diffv2m.config", "diffv2m.diffusion", "diffv2m.synthesis", "diffv2m.jobs",
    "diffv2m.media", "diffv2m.features.colour", "diffv2m.features.cues",
    "diffv2m.features.rhythm", "diffv2m.features.video", "diffv2m.features.semantic",
    "diffv2m.plugin.session", "diffv2m.plugin.score_cli", "diffv2m.plugin.timeline",
    "diffv2m.plugin.timeline_source", "diffv2m.plugin.timeline_writer",
    "diffv2m.plugin.blender.picture", "diffv2m.plugin.blender.engine",
    "diffv2m.plugin.blender.build",
    "diffv2m.export.runtime", "diffv2m.export.engines",
    "diffv2m.evaluate.alignment", "diffv2m.evaluate.distribution", "diffv2m.evaluate.embeddings",
    "diffv2m.evaluate.rhythm_metrics", "diffv2m.evaluate.recon_metrics", "diffv2m.evaluate.cli",
]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch(module):
    res = run_without_torch(f"import importlib, sys\nimportlib.import_module({module!r})\n")
    assert res.returncode == 0, res.stderr[-2000:]


def test_blocker_really_blocks():
    res = run_without_torch("import torch\n")
    assert res.returncode != 0 and "blocked by the test" in res.stderr
