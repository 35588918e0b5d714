"""The OTIO bridge's timeline side: read, select, resolve, decode, write back.

Timelines are built here with OTIO over small videos rendered here (tests/mediagen.py: each
frame's index is drawn as a binary code, each file has its own colour), so every resolved
segment and every decoded frame can be checked exactly.
"""
from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from mediagen import frame_colour, make_video, read_frame_index, write_wav  # noqa: E402

from diffv2m.errors import UserError  # noqa: E402
from diffv2m.plugin.timeline import (  # noqa: E402
    load_timeline, parse_time, resolve_segments, select, timeline_rate)
from diffv2m.plugin.timeline_source import TimelineFrameSource  # noqa: E402
from diffv2m.plugin.timeline_writer import SCORE_TRACK_NAME, write_scored_timeline  # noqa: E402

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange
R23 = 24000 / 1001
R29 = 30000 / 1001
SIZE = (96, 64)
COLOURS = {"A": (220, 40, 40), "B": (40, 200, 40), "C": (40, 60, 220), "D": (230, 220, 40),
           "E": (200, 40, 200), "F": (40, 210, 210)}


def tr(start, dur, rate=R23):
    return TR(RT(start, rate), RT(dur, rate))


def clip(name, path, start, dur, rate=R23, n_media=48, url=None):
    ref = otio.schema.ExternalReference(target_url=url or path.name,
                                        available_range=tr(0, n_media, rate))
    return otio.schema.Clip(name=name, media_reference=ref, source_range=tr(start, dur, rate))


def gap(dur, rate=R23):
    return otio.schema.Gap(source_range=tr(0, dur, rate))


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("tl")
    (root / "media").mkdir()
    paths = {}
    for name, colour in COLOURS.items():
        p = root / "media" / f"{name}.mp4"
        make_video(p, seconds=48 / R23 + 1e-3, fps=Fraction(24000, 1001), size=SIZE,
                   colours=[colour])
        paths[name] = p
    return root, paths


def build_main(paths) -> otio.schema.Timeline:
    """V1: A | transition | B, gap, C at 2x. V2 (top): gap, D, gap, nested stack (E).
    V3 disabled: F over everything. Media paths are relative ("media/X.mp4")."""
    def c(name, s, d):
        return clip(name, paths[name], s, d, url=f"media/{name}.mp4")

    v1 = otio.schema.Track(name="V1")
    v1.append(c("A", 10, 20))                                   # 0..20, src 10..30
    v1.append(otio.schema.Transition(in_offset=RT(2, R23), out_offset=RT(4, R23)))
    b = c("B", 5, 20)                                           # 20..40, src 5..25
    b.markers.append(otio.schema.Marker(name="on_b", marked_range=tr(10, 0)))
    v1.append(b)
    v1.append(gap(10))                                          # 40..50
    cc = c("C", 0, 10)                                          # 50..60, 2x: src 0..20
    cc.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    v1.append(cc)

    v2 = otio.schema.Track(name="V2")
    v2.append(gap(15))
    v2.append(c("D", 30, 5))                                    # 15..20
    v2.append(gap(25))                                          # 20..45
    inner = otio.schema.Stack(name="nest", source_range=tr(2, 6))  # 45..51
    it = otio.schema.Track(name="inner")
    it.append(c("E", 0, 10))
    inner.append(it)
    v2.append(inner)

    v3 = otio.schema.Track(name="V3 off")
    v3.append(c("F", 0, 40))
    v3.append(c("F", 0, 20))
    v3.enabled = False

    a1 = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    a1.append(gap(60))

    tl = otio.schema.Timeline(name="main", global_start_time=RT(86400, R23))
    for t in (v1, v2, v3, a1):
        tl.tracks.append(t)
    tl.tracks.markers.append(otio.schema.Marker(name="chorus", marked_range=tr(21, 19)))
    tl.tracks.markers.append(otio.schema.Marker(name="hit", marked_range=tr(45, 0)))
    tl.tracks.markers.append(otio.schema.Marker(name="end", marked_range=tr(55, 0)))
    return tl


# (timeline start, duration, media name or None, source start frame, speed)
EXPECTED = [(0, 15, "A", 10, 1.0), (15, 5, "D", 30, 1.0), (20, 1, "A", 30, 1.0),
            (21, 19, "B", 6, 1.0), (40, 5, None, None, 1.0), (45, 6, "E", 2, 1.0),
            (51, 9, "C", 2, 2.0)]


def seg_tuples(segs):
    return [(s.timeline_start.value, s.duration.value,
             s.media_path.stem if s.media_path else None,
             s.source_start.value if s.source_start is not None else None, s.speed)
            for s in segs]


@pytest.fixture(scope="module")
def main_file(media):
    root, paths = media
    path = root / "main.otio"
    otio.adapters.write_to_file(build_main(paths), str(path))
    return path


def test_resolve_segments_frame_accurate(main_file):
    tl = load_timeline(main_file)
    assert timeline_rate(tl) == pytest.approx(R23, abs=1e-9)
    sel = select(tl)
    assert (sel.start_time.value, sel.duration.value) == (0, 60)
    segs = resolve_segments(tl, sel, timeline_path=main_file)
    assert seg_tuples(segs) == EXPECTED
    assert all(s.timeline_start.rate == pytest.approx(R23) for s in segs)
    assert segs[0].media_path == main_file.parent / "media" / "A.mp4"
    assert segs[-1].source_start_seconds == pytest.approx(2 / R23)
    # A sub-range starting inside the transition handle and ending inside C.
    sub = resolve_segments(tl, tr(20, 33), timeline_path=main_file)
    assert seg_tuples(sub) == [(20, 1, "A", 30, 1.0), (21, 19, "B", 6, 1.0),
                               (40, 5, None, None, 1.0), (45, 6, "E", 2, 1.0),
                               (51, 2, "C", 2, 2.0)]


def test_frame_source_decodes_the_frames_shown(main_file):
    tl = load_timeline(main_file)
    segs = resolve_segments(tl, select(tl), timeline_path=main_file)
    src = TimelineFrameSource(segs)
    assert src.duration == pytest.approx(60 / R23)
    expected = []
    for start, dur, name, s0, speed in EXPECTED:
        for i in range(dur):
            expected.append((name, None if name is None else int(s0 + speed * i)))
    got = list(src.frames(None, SIZE))
    assert len(got) == 60
    for k, ((t, frame), (name, idx)) in enumerate(zip(got, expected)):
        assert t == pytest.approx(k / R23)
        assert frame.shape == (SIZE[1], SIZE[0], 3) and frame.dtype == np.uint8
        if name is None:
            assert frame.max() == 0, k
        else:
            assert np.abs(frame_colour(frame) - COLOURS[name]).max() < 25, (k, name)
            assert read_frame_index(frame) == idx, (k, name)
    # Size from the first media when not given; a coarser fps samples the same timeline.
    half = list(src.frames(R23 / 2))
    assert len(half) == 30 and half[0][1].shape == (SIZE[1], SIZE[0], 3)
    assert read_frame_index(half[26][1]) == 2 + 2 * 1  # t = 52 frames: C at 2x, frame 4
    key = src.cache_key()
    assert key == TimelineFrameSource(segs).cache_key()
    assert key != TimelineFrameSource(segs[:-1]).cache_key()


def test_freeze_frame_and_relink(media, tmp_path):
    root, paths = media
    tl = otio.schema.Timeline(name="freeze")
    t = otio.schema.Track()
    fz = clip("B", paths["B"], 12, 4, url="/nowhere/else/B.mp4")
    fz.effects.append(otio.schema.FreezeFrame())
    t.append(fz)
    tl.tracks.append(t)
    tl_path = tmp_path / "freeze.otio"
    with pytest.raises(UserError, match=r"freeze\.otio.*'B'.*B\.mp4"):
        resolve_segments(tl, select(tl), timeline_path=tl_path)
    segs = resolve_segments(tl, select(tl), timeline_path=tl_path, media_root=root)
    assert seg_tuples(segs) == [(0, 4, "B", 12, 0.0)]
    frames = list(TimelineFrameSource(segs).frames(None, SIZE))
    assert [read_frame_index(f) for _, f in frames] == [12, 12, 12, 12]


def test_file_urls_and_media_start_timecode(media, tmp_path):
    _, paths = media
    tl = otio.schema.Timeline(name="urls")
    t = otio.schema.Track()
    ref = otio.schema.ExternalReference(target_url=paths["C"].as_uri(),
                                        available_range=tr(86400, 48))  # file starts 01:00:00:00
    t.append(otio.schema.Clip(name="C", media_reference=ref, source_range=tr(86400 + 7, 3)))
    tl.tracks.append(t)
    segs = resolve_segments(tl, select(tl), timeline_path=tmp_path / "x.otio")
    assert segs[0].media_path == paths["C"]
    assert segs[0].source_start_seconds == pytest.approx(7 / R23)
    frames = list(TimelineFrameSource(segs).frames(None, SIZE))
    assert [read_frame_index(f) for _, f in frames] == [7, 8, 9]


def test_parse_time_formats():
    assert parse_time("00:01:00;02", R29) == RT(1800, R29)      # DF: ;00 and ;01 skipped
    assert parse_time("00:01:00:02", R29) == RT(1802, R29)      # NDF count at 29.97
    assert parse_time("00:10:00;00", R29) == RT(17982, R29)
    assert parse_time("00:00:10:00", R23) == RT(240, R23)
    assert parse_time("1234", 24) == RT(1234, 24)
    assert parse_time("1234f", 24) == RT(1234, 24)
    assert parse_time("12.5s", 24) == RT(300, 24)
    assert parse_time("1s", R23) == RT(24, R23)                 # rounded to a whole frame
    with pytest.raises(UserError, match="drop-frame"):
        parse_time("00:00:01;00", 24)
    with pytest.raises(UserError, match="not a valid timecode"):
        parse_time("00:00:01:30", 24)
    with pytest.raises(UserError, match="expected timecode"):
        parse_time("soon", 24)


def test_select_ranges_markers_clips(main_file):
    tl = load_timeline(main_file)
    # Record timecode: the timeline starts at 01:00:00:00.
    sel = select(tl, range=("01:00:00:21", "01:00:01:16"))
    assert (sel.start_time.value, sel.duration.value) == (21, 19)
    assert sel.start_time.rate == pytest.approx(R23)
    sel = select(tl, range=("10", "30f"))
    assert (sel.start_time.value, sel.duration.value) == (10, 20)
    sel = select(tl, marker="chorus")
    assert (sel.start_time.value, sel.duration.value) == (21, 19)
    # A point marker: up to the next marker or the end of the clip under it (issue 14).
    sel = select(tl, marker="hit")                 # the nested E shows 45..51, "end" is at 55
    assert (sel.start_time.value, sel.duration.value) == (45, 6)
    sel = select(tl, marker="end")                                # C ends with the timeline
    assert (sel.start_time.value, sel.duration.value) == (55, 5)
    sel = select(tl, marker="on_b")                # clip marker at B's source 10 -> 20 + 5
    assert (sel.start_time.value, sel.duration.value) == (25, 15)  # to B's end at 40
    sel = select(tl, marker="hit", duration="12")                 # --marker hit --duration 12
    assert (sel.start_time.value, sel.duration.value) == (45, 12)
    sel = select(tl, marker="on_b", duration="1s")
    assert (sel.start_time.value, sel.duration.value) == (25, 24)
    sel = select(tl, clips=["D", "B"])
    assert (sel.start_time.value, sel.duration.value) == (15, 25)
    sel = select(tl, clips=["E"])                                 # nested clip
    assert (sel.start_time.value, sel.duration.value) == (43, 10)
    sel = select(tl, clips=["A"], track="V1")
    assert (sel.start_time.value, sel.duration.value) == (0, 20)
    with pytest.raises(UserError, match="no clip named 'D' on track 'V1'"):
        select(tl, clips=["D"], track="V1")
    with pytest.raises(UserError, match="no marker named 'verse'.*'chorus'"):
        select(tl, marker="verse")


def test_drop_frame_selection():
    tl = otio.schema.Timeline(name="df", global_start_time=otio.opentime.from_timecode(
        "01:00:00;00", R29))
    t = otio.schema.Track()
    t.append(gap(3000, R29))
    tl.tracks.append(t)
    sel = select(tl, range=("01:00:59;29", "01:01:00;02"))
    assert (sel.start_time.value, sel.duration.value) == (1799, 1)
    assert resolve_segments(tl, sel)[0].media_path is None


def test_selection_errors(main_file):
    tl = load_timeline(main_file)
    with pytest.raises(UserError, match="empty selection"):
        select(tl, range=("20", "20"), name=str(main_file))
    with pytest.raises(UserError, match="past the timeline's end 01:00:02:12"):
        select(tl, range=("50", "61"))
    with pytest.raises(UserError, match="past the timeline's end"):
        select(tl, range=("01:00:05:00", "01:00:06:00"))
    with pytest.raises(UserError, match="before the timeline's start"):
        select(tl, range=("00:59:59:00", "01:00:01:00"))


def test_media_errors(media, tmp_path):
    _, paths = media

    def one(ref):
        tl = otio.schema.Timeline(name="bad")
        t = otio.schema.Track()
        t.append(otio.schema.Clip(name="shot 1", media_reference=ref, source_range=tr(0, 5)))
        tl.tracks.append(t)
        return tl

    p = tmp_path / "bad.otio"
    missing = one(otio.schema.ExternalReference(target_url="gone/shot.mov"))
    with pytest.raises(UserError, match=r"bad\.otio: clip 'shot 1': media not found: .*gone/shot\.mov"):
        resolve_segments(missing, select(missing), timeline_path=p)
    url = one(otio.schema.ExternalReference(target_url="https://example.com/shot.mov"))
    with pytest.raises(UserError, match="remote URL https://example.com/shot.mov"):
        resolve_segments(url, select(url), timeline_path=p)
    mref = one(otio.schema.MissingReference())
    with pytest.raises(UserError, match="clip 'shot 1' has no media"):
        resolve_segments(mref, select(mref), timeline_path=p)


def test_load_errors(tmp_path):
    bad = tmp_path / "cut.otio"
    bad.write_text("{not json")
    with pytest.raises(UserError, match=r"cut\.otio: cannot read"):
        load_timeline(bad)
    odd = tmp_path / "cut.xyz"
    odd.write_text("x")
    with pytest.raises(UserError, match=r"cut\.xyz: unknown timeline format"):
        load_timeline(odd)
    with pytest.raises(UserError, match="no such timeline file"):
        load_timeline(tmp_path / "none.otio")
    edl = tmp_path / "cut.edl"
    edl.write_text("TITLE: x\n")
    with pytest.raises(UserError, match="EDL has no frame rate"):
        load_timeline(edl)


def _take(path, seconds, sr=48000):
    n = int(round(seconds * sr))
    audio = (0.1 * np.sin(np.arange(n) * 2 * np.pi * 440 / sr)).astype(np.float32)[None]
    return write_wav(path, audio, sr)


def test_write_scored_timeline_otio(main_file, tmp_path):
    before = main_file.read_bytes()
    tl = load_timeline(main_file)
    n_tracks = len(tl.tracks)
    sel = select(tl, marker="chorus")
    takes = [_take(tmp_path / "main.take-1.wav", sel.duration.to_seconds()),
             _take(tmp_path / "main.take-2.wav", sel.duration.to_seconds())]
    out = tmp_path / "out" / "main.scored.otio"
    md = {"model": "small", "backend": "onnxruntime:CPU", "seed": 1, "steps": 8,
          "guidance": 3.0, "path": Path("/x")}
    write_scored_timeline(tl, sel, takes, out, metadata=md, sample_rate=48000,
                          input_path=main_file)
    assert main_file.read_bytes() == before and len(tl.tracks) == n_tracks
    back = otio.adapters.read_from_file(str(out))
    names = [t.name for t in back.tracks]
    assert names[:n_tracks] == [t.name for t in tl.tracks]
    assert names[n_tracks:] == [SCORE_TRACK_NAME, f"{SCORE_TRACK_NAME} (take 2)"]
    for i, track in enumerate(back.tracks[n_tracks:]):
        assert track.kind == otio.schema.TrackKind.Audio
        (c,) = track.find_clips()
        rng = c.range_in_parent()
        assert rng.start_time == sel.start_time and rng.duration == sel.duration
        assert rng.start_time.rate == pytest.approx(R23)
        assert c.media_reference.target_url == f"../main.take-{i + 1}.wav"
        assert c.media_reference.available_range.duration >= sel.duration
        assert c.metadata["diffv2m"]["seed"] == 1 and c.metadata["diffv2m"]["take"] == i + 1
        assert c.metadata["diffv2m"]["path"] == "/x"
    assert back.metadata["diffv2m"]["selection_start"] == 21
    # Resolving the written timeline finds the same picture.
    assert seg_tuples(resolve_segments(back, sel, timeline_path=out)) == \
        seg_tuples(resolve_segments(tl, sel, timeline_path=main_file))
    with pytest.raises(UserError, match="refusing to overwrite the input"):
        write_scored_timeline(tl, sel, takes, main_file, metadata=md, input_path=main_file)
    assert main_file.read_bytes() == before

    # takes as alternate references of one clip
    out2 = tmp_path / "alt.otio"
    write_scored_timeline(tl, sel, takes, out2, metadata=md, takes_as="clips", sample_rate=48000)
    back2 = otio.adapters.read_from_file(str(out2))
    (c,) = back2.tracks[-1].find_clips()
    assert sorted(c.media_references()) == ["take-1", "take-2"]
    assert c.active_media_reference_key == "take-1"
    assert len(back2.tracks) == n_tracks + 1


def test_fcp_xml_round_trip(main_file, tmp_path):
    tl = load_timeline(main_file)
    sel = select(tl, clips=["B"])                                 # 20..40
    take = _take(tmp_path / "main.take-7.wav", sel.duration.to_seconds())
    out = tmp_path / "main.scored.xml"
    write_scored_timeline(tl, sel, [take], out, metadata={"seed": 7}, sample_rate=48000)
    back = load_timeline(out)
    audio = [t for t in back.tracks if t.kind == otio.schema.TrackKind.Audio]
    hits = [c for t in audio for c in t.find_clips() if c.name == take.stem]
    assert len(hits) == 1
    rng = hits[0].range_in_parent()
    rate = timeline_rate(tl)
    assert rng.start_time.rescaled_to(rate).value == pytest.approx(20)
    assert rng.duration.rescaled_to(rate).value == pytest.approx(20)


EDL_TEXT = """TITLE: reel cut
FCM: NON-DROP FRAME

001  A        V     C        00:00:00:04 00:00:00:16 01:00:00:00 01:00:00:12
* FROM CLIP NAME:  shotA
* FROM CLIP: /elsewhere/A.mp4
002  B        V     C        00:00:01:00 00:00:01:06 01:00:00:12 01:00:00:18
* FROM CLIP NAME:  shotB
* FROM CLIP: /elsewhere/B.mp4
"""


def test_edl_read_select_and_decode(media, tmp_path):
    """An EDL (cmx_3600, rate=23.976) read, selected by record timecode, relinked, decoded."""
    root, paths = media
    edl = tmp_path / "cut.edl"
    edl.write_text(EDL_TEXT)
    tl = load_timeline(edl, rate=23.976)
    assert timeline_rate(tl) == pytest.approx(R23)
    assert tl.global_start_time == RT(86400, R23)             # record start kept as timecode
    sel = select(tl, range=("01:00:00:08", "01:00:00:16"))
    assert (sel.start_time.value, sel.duration.value) == (8, 8)
    with pytest.raises(UserError, match=r"cut\.edl: clip 'shotA': media not found: /elsewhere/A\.mp4"):
        resolve_segments(tl, sel, timeline_path=edl)
    segs = resolve_segments(tl, sel, timeline_path=edl, media_root=root)
    assert seg_tuples(segs) == [(8, 4, "A", 12, 1.0), (12, 4, "B", 24, 1.0)]
    frames = list(TimelineFrameSource(segs).frames(None, SIZE))
    assert [read_frame_index(f) for _, f in frames] == [12, 13, 14, 15, 24, 25, 26, 27]

    # The adapter's own EDL of a one-video-track cut reads back to the same clips.
    again = tmp_path / "again.edl"
    otio.adapters.write_to_file(tl, str(again))
    tl2 = load_timeline(again, rate=R23)
    assert [(c.name, c.source_range) for c in tl2.find_clips()] == \
        [(c.name, c.source_range) for c in tl.find_clips()]
    # (the cmx_3600 writer restarts record timecode at 00:00:00:00: select by frames)
    sel2 = select(tl2, range=("8", "16"))
    assert seg_tuples(resolve_segments(tl2, sel2, timeline_path=again, media_root=root)) == \
        seg_tuples(segs)

    # An EDL cannot carry the score's audio track: writing one is refused, nothing written.
    take = _take(tmp_path / "cut.take-1.wav", sel.duration.to_seconds())
    with pytest.raises(UserError, match=r"scored\.edl: an EDL cannot carry the music"):
        write_scored_timeline(tl, sel, [take], tmp_path / "scored.edl", metadata={})
    assert not (tmp_path / "scored.edl").exists()
