"""A plain video opens as a one-clip timeline (in memory): the session's selection is always
an otio TimeRange, and nothing is written beside the video by opening or selecting."""
from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio
import pytest

from diffv2m import media
from diffv2m.errors import UserError
from diffv2m.plugin.session import ScoringSession
from mediagen import make_video

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    root = tmp_path_factory.mktemp("session_video")
    return make_video(root / "v.mp4", seconds=3, fps=Fraction(25), size=(64, 48)).path


def test_video_opens_as_one_clip_timeline_whole_file_selected(video):
    before = sorted(p.name for p in video.parent.iterdir())
    s = ScoringSession(video, None, cache_dir=video.parent / "cache")
    tl = s.timeline
    assert isinstance(tl, otio.schema.Timeline) and s.kind == "video" and s.rate == 25
    [clip] = tl.find_clips()
    assert isinstance(clip.media_reference, otio.schema.ExternalReference)
    assert clip.media_reference.target_url == video.resolve().as_uri()
    assert clip.source_range.duration == RT(75, 25)
    assert isinstance(s.selection, TR)
    assert s.selection_seconds == (0.0, media.probe(video).duration)
    s.select(range=("1s", "2s"))
    assert isinstance(s.selection, TR) and s.selection == TR(RT(25, 25), RT(25, 25))
    assert s.selection_seconds == (1.0, 2.0)
    s.select(range=(RT(10, 25), RT(60, 25)))                   # the strip's frames
    assert s.selection_seconds == (10 / 25, 60 / 25)
    s.select(clips=["v"])                                      # the one clip: all of it
    assert s.selection_seconds == (0.0, 3.0)
    s.select_seconds(0.3, 1.7)                                 # seconds as given
    assert isinstance(s.selection, TR)
    assert s.selection_seconds == pytest.approx((0.3, 1.7), abs=1e-12)
    path, start, duration = s.picture_file
    assert path == video and (start, duration) == pytest.approx((0.3, 1.4), abs=1e-12)
    assert s.media_files() == [video]
    assert sorted(p.name for p in video.parent.iterdir() if p.name != "cache") == before


def test_video_range_is_checked_against_the_file(video):
    s = ScoringSession(video, None, cache_dir=video.parent / "cache")
    sel = s.selection
    with pytest.raises(UserError, match="past the end of the file"):
        s.select(range=("0s", "100s"))
    with pytest.raises(UserError, match="at or past the end of the file"):
        s.select(range=("4s", "5s"))
    with pytest.raises(UserError, match="no marker named 'm'"):
        s.select(marker="m")
    assert s.selection == sel                                  # a mistake keeps the selection
    s.select(range=("2s", "76"))                               # a frame past the end: the end
    assert s.selection_seconds == (2.0, 3.0)
    assert s.opened.export_range(s.selection) == TR(RT(50, 25), RT(25, 25))
