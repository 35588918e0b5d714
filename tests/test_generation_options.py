"""One set of generation options: generate and score declare them alike, with Settings' defaults."""
from __future__ import annotations

import pytest

from diffv2m.diffusion import SAMPLERS
from diffv2m.generate_cli import build_parser as generate_parser
from diffv2m.generation_options import SAMPLER_NAMES, settings_from_args
from diffv2m.plugin.score_cli import build_parser as score_parser
from diffv2m.synthesis import Settings


def test_generate_and_score_default_to_the_same_settings():
    g = generate_parser().parse_args(["v.mp4"])
    s = score_parser().parse_args(["t.otio", "-o", "o.otio"])
    assert settings_from_args(g) == settings_from_args(s) == Settings()
    assert Settings().steps is None and Settings().cfg_scale is None     # the model's own


def test_options_reach_the_settings_alike():
    argv = ["--seed", "7", "--steps", "9", "--cfg", "2.5", "--sampler", "euler", "--style", "2",
            "--mode", "minor"]
    g = settings_from_args(generate_parser().parse_args(["v.mp4", *argv]))
    s = settings_from_args(score_parser().parse_args(["t.otio", "-o", "o.otio", *argv]))
    assert g == s == Settings(seed=7, steps=9, cfg_scale=2.5, sampler="euler", cls=2,
                              mode="minor")
    assert settings_from_args(score_parser().parse_args(["t.otio", "-o", "o", *argv]),
                              seed_offset=2).seed == 9


@pytest.mark.parametrize("parser", [generate_parser, score_parser])
@pytest.mark.parametrize("bad", [["--style", "3"], ["--mode", "dorian"]])
def test_style_or_mode_outside_the_choices_is_refused(parser, bad, capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["x", "-o", "y", *bad])
    assert "invalid choice" in capsys.readouterr().err


def test_sampler_names_are_the_samplers():
    assert sorted(SAMPLER_NAMES) == sorted(SAMPLERS)
