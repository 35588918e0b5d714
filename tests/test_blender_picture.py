"""The Blender add-on's bpy-free half: which footage a scene span shows, and the timeline both
engines read, checked on real video (frames carry their index) through the project's
timeline frame source."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from diffv2m.errors import UserError
from diffv2m.plugin.blender.picture import Piece, cover, media_rate, scene_rate, write_timeline
from diffv2m.plugin.session import ScoringSession
from diffv2m.plugin.timeline import load_timeline, resolve_segments, select
from diffv2m.plugin.timeline_source import TimelineFrameSource
from mediagen import make_video, read_frame_index


def test_rates_are_exact_fractions():
    assert scene_rate(24, 1.001) == Fraction(24000, 1001)
    assert scene_rate(30, 1.0) == 30
    assert media_rate(23.976023976023978) == Fraction(24000, 1001)
    assert media_rate(25.0) == 25


def test_higher_channel_wins_gaps_are_black_and_pieces_merge():
    a, b = Path("/a.mp4"), Path("/b.mp4")
    low = Piece(0, 100, a, source_frame=10, fps=Fraction(24))
    high = Piece(40, 60, b, source_frame=0, fps=Fraction(25))
    span = cover(0, 120, Fraction(24), [low, high], channels=[1, 2])
    assert [(p.start, p.end, p.path, p.source_frame) for p in span.pieces] == [
        (0, 40, a, 10), (40, 60, b, 0), (60, 100, a, 70), (100, 120, None, 0)]
    assert span.retimed and span.single_file() is None
    swapped = cover(0, 100, Fraction(24), [low, high], channels=[2, 1])
    assert len(swapped.pieces) == 1 and swapped.single_file() == (a, 10 / 24, 110 / 24)
    with pytest.raises(UserError, match="empty range"):
        cover(5, 5, Fraction(24), [low])


@pytest.mark.parametrize("rate", [Fraction(24), Fraction(24000, 1001)], ids=["24", "23.976"])
def test_25fps_footage_shows_one_source_frame_per_scene_frame(tmp_path, rate):
    video = make_video(tmp_path / "v25.mp4", seconds=3.0, fps=Fraction(25), size=(96, 64)).path
    # A strip trimmed to source frames 7..67, placed at scene frame 0 of the span.
    span = cover(0, 60, rate, [Piece(0, 60, video, source_frame=7, fps=Fraction(25))])
    assert span.retimed and span.single_file() is None
    path = write_timeline(span, tmp_path)
    tl = load_timeline(path)
    sel = select(tl, range=("0", "60"))
    source = TimelineFrameSource(resolve_segments(tl, sel, timeline_path=path))
    assert source.duration == pytest.approx(60 / float(rate), abs=1e-9)
    shown = [read_frame_index(f) for _, f in source.frames(None, (96, 64))]
    assert shown == list(range(7, 67))


def test_same_rate_strip_is_a_plain_video_range(tmp_path):
    video = make_video(tmp_path / "v24.mp4", seconds=2.0, fps=Fraction(24), size=(96, 64)).path
    span = cover(10, 40, Fraction(24), [Piece(5, 45, video, source_frame=0, fps=Fraction(24))])
    assert span.single_file() == (video, 5 / 24, 35 / 24)
    assert not span.retimed
