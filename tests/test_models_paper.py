"""The paper config builds on the meta device, matches the published parameter counts, and
its state-dict names map onto the published ones with a short list of renames."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from diffv2m.config import paper_config
from diffv2m.models.diffv2m import count_parameters
from diffv2m.models.dit import DiT
from diffv2m.models.rhythm_predictor import RhythmPredictor

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / \
    "diffv2m_paper_state_dict.json"
for cand in (REFERENCE, Path("/work/shared/reference/diffv2m_paper_state_dict.json")):
    if cand.is_file():
        REFERENCE = cand
        break

# published counts (reference/README.md) and the tensors its forward never uses
PUB_DIT = 1_380_657_280
PUB_SEMANTIC = 51_518_720          # incl. the 12-layer rhythm extractor
PUB_COLOUR = 6_294_016
PUB_RHYTHM = 396_544
UNUSED = {"semantic": 768 * 512 + 768, "color": 768 * 3072 + 768, "rhythm": 768 + 768}
TOL = 0.001                        # relative tolerance on each count


@pytest.fixture(scope="module")
def paper():
    cfg = paper_config()
    with torch.device("meta"):
        dit, rp = DiT(cfg), RhythmPredictor(cfg)
    return cfg, dit, rp


def test_paper_builds_on_meta_with_published_counts(paper):
    cfg, dit, rp = paper
    assert next(dit.parameters()).device.type == "meta"
    c = dit.conditioner.conditioners
    counts = {
        "dit (without conditioners)": (count_parameters(dit) - count_parameters(dit.conditioner),
                                       PUB_DIT),
        "semantic conditioner + rhythm predictor":
            (count_parameters(c["semantic"]) + count_parameters(rp),
             PUB_SEMANTIC - UNUSED["semantic"]),
        "colour conditioner": (count_parameters(c["color"]), PUB_COLOUR - UNUSED["color"]),
        "rhythm conditioner": (count_parameters(c["rhythm"]), PUB_RHYTHM - UNUSED["rhythm"]),
        "class": (count_parameters(c["cls"]), 2_304),
        "seconds_start": (count_parameters(c["seconds_start"]), 198_272),
        "seconds_total": (count_parameters(c["seconds_total"]), 198_272),
    }
    print()
    for name, (ours, pub) in counts.items():
        print(f"  {name:42s} ours {ours:>13,d}  published(used) {pub:>13,d}  "
              f"gap {ours - pub:+,d}")
    print(f"  (published also holds unused proj_out tensors: {UNUSED})")
    for name, (ours, pub) in counts.items():
        assert abs(ours - pub) <= TOL * pub, name


def _ours_to_published(name: str) -> str | None:
    """Our state-dict name (DiT / rhythm predictor, paper config) -> the published name."""
    if name.startswith("rp."):
        return "conditioner.conditioners.semantic.extractor." + name[3:]
    name = name[len("dit."):]
    if name.startswith("conditioner."):
        return name.replace("conditioner.conditioners.cls.", "conditioner.conditioners.class.")
    name = re.sub(r"^(transformer\.layers\.\d+\.)fusion\.", r"\1", name)
    return "model.model." + name


@pytest.mark.skipif(not REFERENCE.is_file(), reason="published state-dict manifest not present")
def test_paper_names_and_shapes_map_onto_published(paper):
    cfg, dit, rp = paper
    pub = json.loads(REFERENCE.read_text())["tensors"]
    pub = {k: list(v["shape"] if isinstance(v, dict) else v) for k, v in pub.items()}
    ours = {f"dit.{k}": list(v.shape) for k, v in dit.state_dict().items()}
    ours.update({f"rp.{k}": list(v.shape) for k, v in rp.state_dict().items()})
    mapped = {}
    for k, shape in ours.items():
        p = _ours_to_published(k)
        assert p in pub, f"{k} -> {p} not in the published state dict"
        assert pub[p] == shape, f"{k}: {shape} vs published {pub[p]}"
        mapped[p] = k
    missing = sorted(k for k in pub if k not in mapped and not k.startswith("pretransform."))
    # only the never-used base-class projections are left over
    assert missing == sorted(f"conditioner.conditioners.{s}.proj_out.{w}"
                             for s in ("semantic", "rhythm", "color") for w in ("weight", "bias"))
    n_pub = sum(math.prod(pub[p]) for p in mapped)
    assert n_pub == sum(math.prod(s) for s in ours.values())
