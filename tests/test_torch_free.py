"""The runtime path (diffv2m.runtime, plugin, and the core they use) imports no torch."""
from __future__ import annotations

from pathlib import Path

import pytest

from torch_blocker import run_without_torch

TORCH_FREE = [
    "diffv2m.cli", "diffv2m.config", "diffv2m.diffusion", "diffv2m.synthesis", "diffv2m.jobs",
    "diffv2m.media", "diffv2m.features.colour", "diffv2m.features.cuts_motion",
    "diffv2m.features.rhythm", "diffv2m.features.video", "diffv2m.features.semantic",
    "diffv2m.plugin.session", "diffv2m.plugin.score_cli", "diffv2m.plugin.timeline",
    "diffv2m.plugin.timeline_source", "diffv2m.plugin.timeline_writer",
    "diffv2m.plugin.blender.picture", "diffv2m.plugin.blender.engine",
    "diffv2m.plugin.blender.build",
    "diffv2m.export.engines", "diffv2m.export.engines_cli", "diffv2m.export.tensorrt",
    "diffv2m.evaluate.alignment", "diffv2m.evaluate.distribution", "diffv2m.evaluate.embeddings",
    "diffv2m.evaluate.rhythm_metrics", "diffv2m.evaluate.recon_metrics", "diffv2m.evaluate.cli",
    "diffv2m.score.events", "diffv2m.score.midi", "diffv2m.score.render",
    "diffv2m.evaluate.transcription", "diffv2m.evaluate.symbolic", "diffv2m.evaluate.note_f1",
    "diffv2m.media_timecode", "diffv2m.data.clip_features",
]
_PKG = Path(__file__).resolve().parents[1] / "diffv2m"
#: every module of these folders, found on disk (a new one is checked without being listed)
TORCH_FREE_FOLDERS = ("runtime", "features", "score")
TORCH_FREE += ["diffv2m.media", "diffv2m.diffusion", "diffv2m.synthesis"] + sorted(
    f"diffv2m.{folder}" + ("" if p.stem == "__init__" else f".{p.stem}")
    for folder in TORCH_FREE_FOLDERS for p in (_PKG / folder).glob("*.py"))
TORCH_FREE = list(dict.fromkeys(TORCH_FREE))


def test_the_folder_walk_finds_the_runtime():
    assert {"diffv2m.runtime.ort", "diffv2m.runtime.engines", "diffv2m.features.cue_track",
            "diffv2m.score.take"} <= set(TORCH_FREE)


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch(module):
    res = run_without_torch(f"import importlib, sys\nimportlib.import_module({module!r})\n")
    assert res.returncode == 0, res.stderr[-2000:]


def test_blocker_really_blocks():
    res = run_without_torch("import torch\n")
    assert res.returncode != 0 and "blocked by the test" in res.stderr


def test_score_rendering_and_midi_run_without_torch(tmp_path):
    """Generation renders in the runtime path: MIDI + FluidSynth audio must not need torch."""
    code = f"""
from diffv2m.errors import UserError
from diffv2m.score import render
from diffv2m.score.events import Ensemble, Note, Score
s = Score([Note('melody', 60, 0.1, 0.6, 90), Note('drums', 36, 0.1, 0.2, 100)], Ensemble('x'), 1.0)
render.write_midi(s, {str(tmp_path / 'x.mid')!r})
try:
    y = render.render_score(s)
    assert y.shape == (2, 48000) and abs(y).max() > 0
except UserError as e:          # no FluidSynth/SoundFont here: the one-line error, still torch-free
    print('skipped:', e)
"""
    res = run_without_torch(code)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "x.mid").is_file()
