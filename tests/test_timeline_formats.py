"""Every format the bridge advertises, on files the tests write themselves (issue 14).

Each file is written with the format's own OTIO adapter (edited afterwards, like a host
writes it, where the adapter's writer cannot express a feature: FCP 7 ``<enabled>FALSE``,
``timeremap``, generators; FCPX ``enabled="0"``; Kdenlive hidden tracks, colour clips and
duplicated guides), read back with :func:`load_timeline`, resolved, and decoded: every frame's
coded index and colour is checked, so picture and placement are right to the frame.
"""
from __future__ import annotations

import json
import re
import sys
import urllib.parse
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from mediagen import frame_colour, make_video, read_frame_index, write_wav  # noqa: E402

from diffv2m.errors import UserError  # noqa: E402
from diffv2m.plugin import timeline as timeline_mod  # noqa: E402
from diffv2m.plugin.session import ScoringSession  # noqa: E402
from diffv2m.plugin.timeline import (  # noqa: E402
    TITLE_STAND_IN, format_time, list_markers, load_timeline, parse_time, resolve_segments,
    select)
from diffv2m.plugin.timeline_source import TimelineFrameSource  # noqa: E402
from diffv2m.plugin.timeline_writer import (  # noqa: E402
    SCORE_TRACK_NAME, sidecar_path, write_scored_timeline)

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange
R = 25
SIZE = (64, 48)
N_MEDIA = 100                      # frames per media file (4 s at 25 fps)
COLOURS = {"A": (210, 40, 40), "B": (40, 200, 40), "C": (40, 60, 220), "D": (220, 200, 40)}
TC_START = 90000                   # 01:00:00:00 at 25 fps
ADAPTERS = {"otio_json": "otio", "fcp_xml": "xml", "fcpx_xml": "fcpxml", "kdenlive": "kdenlive",
            "AAF": "aaf"}


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    (root / "media").mkdir()
    for name, colour in COLOURS.items():
        make_video(root / "media" / f"{name}.mp4", seconds=N_MEDIA / R, fps=Fraction(R),
                   size=SIZE, colours=[colour])
    # The same pictures, with an embedded start timecode (a QuickTime tmcd track).
    for name in "AB":
        make_video(root / "media" / f"{name}_tc.mp4", seconds=N_MEDIA / R, fps=Fraction(R),
                   size=SIZE, colours=[COLOURS[name]], timecode="01:00:00:00")
    return root


def mpath(root, name):
    return (root / "media" / f"{name}.mp4").resolve()


def clip(root, name, src, dur, *, media_start=0, rate=R, enabled=True, file=None):
    ref = otio.schema.ExternalReference(
        target_url=str(mpath(root, file or name)),
        available_range=TR(RT(media_start, rate), RT(N_MEDIA, rate)))
    c = otio.schema.Clip(name=name, media_reference=ref,
                         source_range=TR(RT(media_start + src, rate), RT(dur, rate)))
    c.enabled = enabled
    return c


def gap(dur, rate=R):
    return otio.schema.Gap(source_range=TR(RT(0, rate), RT(dur, rate)))


def timeline(*items, gst=None, extra_tracks=(), name="cut"):
    tl = otio.schema.Timeline(name=name, global_start_time=gst)
    v1 = otio.schema.Track(name="V1")
    v1.extend(list(items))
    tl.tracks.append(v1)
    for t in extra_tracks:
        tl.tracks.append(t)
    return tl


def write(tl, path, adapter):
    kw = {"use_empty_mob_ids": True} if adapter == "AAF" else {}
    with timeline_mod.adapter_output():
        otio.adapters.write_to_file(tl, str(path), adapter_name=adapter, **kw)
    return path


def seg_tuples(segs):
    return [(int(s.timeline_start.value), int(s.duration.value),
             s.media_path.stem.replace("_tc", "") if s.media_path else None,
             None if s.media_path is None else round(s.source_start_seconds * R, 6),
             s.speed, s.colour) for s in segs]


def check_picture(path, want, *, media_root=None, rate=None, sel=None):
    """Load, resolve and decode ``path``; compare with ``want`` = [(start, dur, name or None,
    first source frame in the file, speed, colour)] and every decoded frame."""
    before = Path(path).read_bytes()
    tl = load_timeline(path, media_root=media_root, rate=rate)
    selection = sel(tl) if sel else select(tl)
    segs = resolve_segments(tl, selection, timeline_path=path, media_root=media_root)
    assert seg_tuples(segs) == want
    frames = list(TimelineFrameSource(segs).frames(None, SIZE))
    expect = []
    for _, dur, name, src, speed, colour in want:
        for i in range(dur):
            expect.append((name, None if name is None else int(round(src + speed * i)), colour))
    assert len(frames) == len(expect)
    for k, ((_, frame), (name, idx, colour)) in enumerate(zip(frames, expect)):
        if name is None:
            target = colour or (0, 0, 0)
            assert np.abs(frame.reshape(-1, 3).mean(0) - target).max() < 2, (k, target)
        else:
            assert np.abs(frame_colour(frame) - COLOURS[name]).max() < 25, (k, name)
            assert read_frame_index(frame) == idx, (k, name, idx)
    assert Path(path).read_bytes() == before                   # never modified
    return tl, segs


# ------------------------------------------------------------------ features x adapters

def _basic(root):
    return timeline(clip(root, "A", 5, 10), gap(5), clip(root, "B", 20, 10)), \
        [(0, 10, "A", 5, 1.0, None), (10, 5, None, None, 1.0, None), (15, 10, "B", 20, 1.0, None)]


def _start_1h(root):
    tl, want = _basic(root)
    tl.global_start_time = RT(TC_START, R)
    return tl, want


def _media_start_tc(root):
    """Source ranges in the media's own timecode (01:00:00:00 = the file's first frame)."""
    tl = timeline(clip(root, "A", 5, 10, media_start=TC_START),
                  clip(root, "B", 20, 10, media_start=TC_START), gst=RT(TC_START, R))
    return tl, [(0, 10, "A", 5, 1.0, None), (10, 10, "B", 20, 1.0, None)]


def _dissolve(root):
    tl = timeline(clip(root, "A", 5, 12), otio.schema.Transition(
        transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve, in_offset=RT(2, R),
        out_offset=RT(2, R)), clip(root, "B", 20, 10))
    # resolved as a cut at the transition's midpoint
    return tl, [(0, 12, "A", 5, 1.0, None), (12, 10, "B", 20, 1.0, None)]


def _nested(root):
    inner = otio.schema.Stack(name="nest", source_range=TR(RT(0, R), RT(6, R)))
    t = otio.schema.Track(name="inner")
    t.append(clip(root, "C", 3, 6))
    inner.append(t)
    return timeline(clip(root, "A", 5, 10), inner), \
        [(0, 10, "A", 5, 1.0, None), (10, 6, "C", 3, 1.0, None)]


FEATURES = {"basic": _basic, "start_1h": _start_1h, "media_start_tc": _media_start_tc,
            "dissolve": _dissolve, "nested": _nested}
# What each adapter's writer and reader carry (AAF's writer needs Avid's own metadata on
# transitions; the Kdenlive adapter flattens nested stacks).
CARRIED = {
    "otio_json": set(FEATURES), "fcp_xml": set(FEATURES), "fcpx_xml": set(FEATURES),
    "kdenlive": {"basic", "media_start_tc", "dissolve"},
    "AAF": {"basic", "start_1h", "media_start_tc", "nested"},
}
CASES = [(a, f) for a in ADAPTERS for f in FEATURES if f in CARRIED[a]]


@pytest.mark.parametrize("adapter,feature", CASES, ids=[f"{a}-{f}" for a, f in CASES])
def test_adapter_reads_back_the_picture_to_the_frame(media, tmp_path, adapter, feature):
    tl, want = FEATURES[feature](media)
    path = write(tl, tmp_path / f"{feature}.{ADAPTERS[adapter]}", adapter)
    back, _ = check_picture(path, want)
    if feature == "start_1h" and adapter != "fcpx_xml":  # its writer drops it (see below)
        gst = back.global_start_time
        assert gst is not None and gst.rescaled_to(R).value == TC_START
        sel = select(back, range=("01:00:00:15", "01:00:00:20"))
        assert (sel.start_time.value, sel.duration.value) == (15, 5)


# ------------------------------------------------------------ what the adapters lose

def _insert(xml_text: str, after: str, text: str) -> str:
    i = xml_text.index(after) + len(after)
    return xml_text[:i] + text + xml_text[i:]


def test_fcp_xml_disabled_clip_and_track_from_the_source_xml(media, tmp_path):
    """The released fcp_xml reader ignores <enabled>FALSE</enabled>: read from the XML."""
    v2 = otio.schema.Track(name="V2")
    v2.append(clip(media, "C", 0, 25))
    tl = timeline(clip(media, "A", 5, 10), clip(media, "B", 20, 10), extra_tracks=[v2])
    path = write(tl, tmp_path / "off.xml", "fcp_xml")
    text = path.read_text()
    ids = re.findall(r'<clipitem frameBlend="FALSE" id="(clipitem-\d+)">\s*<file id="file-\d+">\s*'
                     r'<pathurl>[^<]*B\.mp4', text)
    text = text.replace(f'id="{ids[0]}">', f'id="{ids[0]}">\n<enabled>FALSE</enabled>', 1)
    tracks = [m.start() for m in re.finditer(r"<track>", text)]
    text = text[:tracks[1] + 7] + "\n<enabled>FALSE</enabled>" + text[tracks[1] + 7:]
    path.write_text(text)
    raw = otio.adapters.read_from_file(str(path), adapter_name="fcp_xml")
    assert all(c.enabled for c in raw.find_clips())            # the adapter loses it
    check_picture(path, [(0, 10, "A", 5, 1.0, None), (10, 15, None, None, 1.0, None)])


TIMEREMAP = ("<filter><effect><name>Time Remap</name><effectid>timeremap</effectid>"
             "<effectcategory>motion</effectcategory><effecttype>motion</effecttype>"
             "<mediatype>video</mediatype><parameter><parameterid>speed</parameterid>"
             "<name>speed</name><value>{speed}</value></parameter><parameter>"
             "<parameterid>reverse</parameterid><name>reverse</name><value>FALSE</value>"
             "</parameter></effect></filter>")


@pytest.mark.parametrize("speed", [200, 0], ids=["speed-2x", "freeze-frame"])
def test_fcp_xml_speed_change_and_freeze_frame(media, tmp_path, speed):
    tl = timeline(clip(media, "A", 5, 10), clip(media, "B", 4, 6))
    path = write(tl, tmp_path / "speed.xml", "fcp_xml")
    text = path.read_text()
    last = text.rindex("</clipitem>")
    path.write_text(text[:last] + TIMEREMAP.format(speed=speed) + text[last:])
    check_picture(path, [(0, 10, "A", 5, 1.0, None), (10, 6, "B", 4, speed / 100, None)])


def test_otio_speed_freeze_disabled_on_the_native_format(media, tmp_path):
    fast = clip(media, "B", 4, 5)
    fast.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    still = clip(media, "C", 7, 4)
    still.effects.append(otio.schema.FreezeFrame())
    off = otio.schema.Track(name="V2 off")
    off.append(clip(media, "D", 0, 30))
    off.enabled = False
    tl = timeline(clip(media, "A", 5, 10), fast, still, clip(media, "D", 0, 5, enabled=False),
                  extra_tracks=[off])
    path = write(tl, tmp_path / "fx.otio", "otio_json")
    check_picture(path, [(0, 10, "A", 5, 1.0, None), (10, 5, "B", 4, 2.0, None),
                         (15, 4, "C", 7, 0.0, None), (19, 11, None, None, 1.0, None)])


def test_fcpx_disabled_clip(media, tmp_path):
    tl = timeline(clip(media, "A", 5, 10), clip(media, "B", 20, 10))
    path = write(tl, tmp_path / "off.fcpxml", "fcpx_xml")
    text = path.read_text()
    path.write_text(text.replace('<clip name="B"', '<clip name="B" enabled="0"', 1))
    check_picture(path, [(0, 10, "A", 5, 1.0, None), (10, 10, None, None, 1.0, None)])


def _kdenlive_colour(path: Path, file_name: str, colour: str) -> None:
    """Turn the producer of ``file_name`` into a Kdenlive colour clip."""
    tree = ET.parse(str(path))
    for prod in tree.getroot().iter("producer"):
        props = {p.get("name"): p for p in prod.findall("property")}
        if "resource" in props and props["resource"].text.endswith(file_name):
            props["mlt_service"].text = "color"
            props["resource"].text = colour
    tree.write(str(path), encoding="utf-8", xml_declaration=True)


def test_kdenlive_hidden_track_colour_clip_guides_and_clip_markers(media, tmp_path):
    v2 = otio.schema.Track(name="V2")
    v2.append(clip(media, "C", 0, 40))
    tl = timeline(clip(media, "A", 5, 10), clip(media, "D", 0, 10), clip(media, "A", 40, 10),
                  extra_tracks=[v2])
    tl.tracks.markers.append(otio.schema.Marker(name="drop", marked_range=TR(RT(4, R), RT(0, R))))
    path = write(tl, tmp_path / "proj.kdenlive", "kdenlive")
    _kdenlive_colour(path, "D.mp4", "0x28c828ff")
    tree = ET.parse(str(path))
    root = tree.getroot()
    main = root.findall("tractor")[-1]
    main.findall("track")[-1].set("hide", "video")                # V2's eye button off
    for prod in root.iter("producer"):                 # a bin marker on A's source frame 8
        if any((p.text or "").endswith("A.mp4") for p in prod.findall("property")):
            ET.SubElement(prod, "property", name="kdenlive:markers").text = \
                '[{"pos": 8, "comment": "hit", "type": 0}]'
    tree.write(str(path), encoding="utf-8", xml_declaration=True)
    with timeline_mod.adapter_output():
        raw = otio.adapters.read_from_file(str(path), adapter_name="kdenlive")
    # the adapter puts the bin marker on every use of A, shown or not
    assert [len(c.markers) for c in raw.find_clips() if c.name == "A"] == [1, 1]
    tl2, segs = check_picture(path, [(0, 10, "A", 5, 1.0, None),
                                     (10, 10, None, None, 1.0, (40, 200, 40)),
                                     (20, 10, "A", 40, 1.0, None), (30, 10, None, None, 1.0, None)])
    assert list_markers(tl2) == [("hit", TR(RT(3, R), RT(0, R))), ("drop", TR(RT(4, R), RT(0, R)))]
    sel = select(tl2, marker="drop")              # point guide: to the end of the clip under it
    assert (sel.start_time.value, sel.duration.value) == (4, 6)
    sel = select(tl2, marker="hit")                                 # up to the next marker
    assert (sel.start_time.value, sel.duration.value) == (3, 1)


def shotcut_mlt(path: Path, tracks, *, rate=R, size=SIZE) -> Path:
    """A Shotcut-style MLT project: ``tracks`` = [(name, hidden, [(file or None, in, out) or
    ("blank", n) or ("color", "0xRRGGBBAA", n)])]; playlists are the tracks, chains the
    media, a black ``background`` track first."""
    total = max(sum(it[2] - it[1] + 1 if it[0] not in ("blank", "color") else it[-1]
                    for it in items) for _, _, items in tracks)
    out = [f'<?xml version="1.0" standalone="no"?>\n<mlt LC_NUMERIC="C" version="7.12.0" '
           f'title="Shotcut" producer="main_bin"><profile description="test" width="{size[0]}" '
           f'height="{size[1]}" progressive="1" sample_aspect_num="1" sample_aspect_den="1" '
           f'display_aspect_num="4" display_aspect_den="3" frame_rate_num="{rate}" '
           'frame_rate_den="1" colorspace="601"/><playlist id="main_bin"><property '
           'name="xml_retain">1</property></playlist>'
           f'<producer id="black" in="0" out="{total - 1}"><property name="length">{total}'
           '</property><property name="mlt_service">color</property><property name="resource">'
           '0</property></producer><playlist id="background"><entry producer="black" in="0" '
           f'out="{total - 1}"/></playlist>']
    n = 0
    body = []
    for t, (name, hidden, items) in enumerate(tracks):
        entries = []
        for it in items:
            if it[0] == "blank":
                entries.append(f'<blank length="{it[1]}"/>')
                continue
            n += 1
            if it[0] == "color":
                out.append(f'<producer id="p{n}" in="0" out="{it[2] - 1}"><property name="length">'
                           f'{it[2]}</property><property name="mlt_service">color</property>'
                           f'<property name="resource">{it[1]}</property></producer>')
                entries.append(f'<entry producer="p{n}" in="0" out="{it[2] - 1}"/>')
                continue
            f, a, b = it
            out.append(f'<chain id="p{n}" out="{N_MEDIA - 1}"><property name="length">{N_MEDIA}'
                       f'</property><property name="resource">{f}</property><property '
                       'name="mlt_service">avformat-novalidate</property><property '
                       f'name="shotcut:caption">{Path(f).name}</property></chain>')
            entries.append(f'<entry producer="p{n}" in="{a}" out="{b}"/>')
        out.append(f'<playlist id="playlist{t}"><property name="shotcut:video">1</property>'
                   f'<property name="shotcut:name">{name}</property>{"".join(entries)}'
                   '</playlist>')
        hide = ' hide="video"' if hidden else ""
        body.append(f'<track producer="playlist{t}"{hide}/>')
    out.append(f'<tractor id="tractor0" title="Shotcut" in="0" out="{total - 1}"><property '
               'name="shotcut">1</property><track producer="background"/>' + "".join(body)
               + "</tractor></mlt>\n")
    path.write_text("".join(out))
    return path


def test_shotcut_mlt_project(media, tmp_path):
    """.mlt (Shotcut, melt) is read by the bridge's own OTIO adapter diffv2m_mlt."""
    path = shotcut_mlt(tmp_path / "cut.mlt", [
        ("V1", False, [(mpath(media, "A"), 5, 14), ("blank", 5), ("color", "0x28c828ff", 6),
                       (mpath(media, "B"), 20, 29)]),
        ("V2 hidden", True, [(mpath(media, "C"), 0, 30)])])
    assert otio.adapters.from_filepath(str(path)).name == "diffv2m_mlt"
    tl, _ = check_picture(path, [(0, 10, "A", 5, 1.0, None), (10, 5, None, None, 1.0, None),
                                 (15, 6, None, None, 1.0, (40, 200, 40)),
                                 (21, 10, "B", 20, 1.0, None)])
    assert [t.name for t in tl.tracks] == ["V1", "V2 hidden"] and not tl.tracks[1].enabled


# ------------------------------------------------------------------------- generators

GENERATOR = ("<generatoritem id=\"gen-{n}\"><name>{name}</name><duration>{dur}</duration>"
             "<rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate><start>{start}</start>"
             "<end>{end}</end><in>0</in><out>{dur}</out><enabled>TRUE</enabled><effect>"
             "<name>{name}</name><effectid>{effectid}</effectid><effectcategory>{cat}"
             "</effectcategory><effecttype>generator</effecttype><mediatype>video</mediatype>"
             "{params}</effect></generatoritem>")
COLOUR_PARAM = ("<parameter><parameterid>color</parameterid><name>Color</name><value>"
                "<alpha>255</alpha><red>40</red><green>60</green><blue>220</blue></value>"
                "</parameter>")
TEXT_PARAM = ("<parameter><parameterid>str</parameterid><name>Text</name><value>THE END"
              "</value></parameter><parameter><parameterid>fontcolor</parameterid><value>"
              "<alpha>255</alpha><red>255</red><green>255</green><blue>255</blue></value>"
              "</parameter>")


def test_fcp_xml_colour_matte_and_title_generators(media, tmp_path):
    tl = timeline(clip(media, "A", 5, 10))
    path = write(tl, tmp_path / "gen.xml", "fcp_xml")
    text = path.read_text()
    end = text.index("</clipitem>") + len("</clipitem>")
    gens = (GENERATOR.format(n=1, name="Color", dur=8, start=10, end=18, effectid="Color",
                             cat="Matte", params=COLOUR_PARAM)
            + GENERATOR.format(n=2, name="Text", dur=6, start=18, end=24, effectid="Text",
                               cat="Text", params=TEXT_PARAM))
    path.write_text(text[:end] + gens + text[end:])
    tl2, segs = check_picture(path, [(0, 10, "A", 5, 1.0, None),
                                     (10, 8, None, None, 1.0, (40, 60, 220)),
                                     (18, 6, None, None, 1.0, TITLE_STAND_IN)])
    assert any("title generator" in n and "stand-in" in n for n in segs.notes)
    session = ScoringSession(path, None)
    session.select(range=("18", "24"))
    assert any("stand-in" in w for w in session.warnings)


def test_mostly_black_selection_is_reported(media, tmp_path):
    tl = timeline(clip(media, "A", 5, 4), gap(20), clip(media, "B", 0, 4))
    path = write(tl, tmp_path / "dark.otio", "otio_json")
    session = ScoringSession(path, None)
    session.select(range=("0", "28"))
    assert session.warnings and "71% of the selection has no picture" in session.warnings[0]
    assert "warnings" in session.provenance(*session.selection_seconds)
    session.select(range=("0", "4"))
    assert session.warnings == []


# ------------------------------------------------------- timecode, relinking, rates

EDL = """TITLE: resolve cut
FCM: NON-DROP FRAME

001  AX       V     C        01:00:00:05 01:00:00:15 01:00:00:00 01:00:00:10
* FROM CLIP NAME:  {a}
002  AX       V     C        01:00:01:00 01:00:01:06 01:00:00:10 01:00:00:16
* FROM CLIP NAME:  {b}
"""


@pytest.mark.parametrize("names", [("A_tc.mp4", "B_tc.mp4"), ("A_tc", "B_tc")],
                         ids=["file-names", "clip-names"])
def test_clip_name_only_edl_relinks_under_media_root_and_uses_embedded_timecode(
        media, tmp_path, names):
    """A Resolve-style EDL (clip names only, source timecode from 01:00:00:00) against media
    with an embedded start timecode: relinked by the diffv2m_relink media linker."""
    edl = tmp_path / "resolve.edl"
    edl.write_text(EDL.format(a=names[0], b=names[1]))
    with pytest.raises(UserError, match=r"resolve\.edl: clip '.*' has no media .*media root"):
        check_picture(edl, [], rate=25)
    tl, segs = check_picture(edl, [(0, 10, "A", 5, 1.0, None), (10, 6, "B", 25, 1.0, None)],
                             media_root=media, rate=25)
    c = tl.find_clips()[0]
    assert c.media_reference.target_url == mpath(media, "A_tc").as_uri()
    assert "relinked_from" in c.media_reference.metadata["diffv2m"]
    assert segs.notes == []
    assert [m.name for m in otio.plugins.ActiveManifest().media_linkers] == ["diffv2m_relink"]


def test_media_without_start_timecode_says_so(media, tmp_path):
    edl = tmp_path / "notc.edl"
    edl.write_text(EDL.format(a="A.mp4", b="B.mp4"))
    tl = load_timeline(edl, rate=25, media_root=media)
    segs = resolve_segments(tl, select(tl), timeline_path=edl, media_root=media)
    assert any("A.mp4 has no start timecode" in n for n in segs.notes)
    with pytest.raises(UserError, match="past the end of the file"):
        list(TimelineFrameSource(segs).frames(None, SIZE))


@pytest.mark.parametrize("url", [r"S:\media\A.mp4", "file://localhost/S%3a/media/A.mp4",
                                 "file:///S:/media/A.mp4", r"\\server\share\media\A.mp4"])
def test_windows_paths_relink_by_file_name(media, tmp_path, url):
    c = clip(media, "A", 5, 10)
    c.media_reference.target_url = url
    tl = timeline(c)
    for adapter in ("otio_json", "fcp_xml"):
        path = write(tl, tmp_path / f"win.{ADAPTERS[adapter]}", adapter)
        with pytest.raises(UserError, match=r"A\.mp4.*relink"):
            check_picture(path, [])
        check_picture(path, [(0, 10, "A", 5, 1.0, None)], media_root=media)


def test_relink_prefers_the_same_card_folder(media, tmp_path):
    """Camera cards all hold a C0001.MP4: the one under the same folder names wins."""
    import shutil
    for card, name in (("CARD1", "A"), ("CARD2", "B")):
        (tmp_path / "root" / card / "CLIP").mkdir(parents=True)
        shutil.copy(mpath(media, name), tmp_path / "root" / card / "CLIP" / "C0001.MP4")
    c = clip(media, "B", 5, 10)
    c.media_reference.target_url = r"E:\shoot\CARD2\CLIP\C0001.MP4"
    path = write(timeline(c), tmp_path / "cards.otio", "otio_json")
    tl = load_timeline(path, media_root=tmp_path / "root")
    assert "CARD2" in tl.find_clips()[0].media_reference.target_url
    segs = resolve_segments(tl, select(tl), timeline_path=path, media_root=tmp_path / "root")
    assert segs[0].media_path.parent.parent.name == "CARD2"
    frames = list(TimelineFrameSource(segs).frames(None, SIZE))
    assert np.abs(frame_colour(frames[0][1]) - COLOURS["B"]).max() < 25


R23, R29, R59 = 24000 / 1001, 30000 / 1001, 60000 / 1001
RATES = [(R23, "23.976"), (24, "24"), (25, "25"), (R29, "29.97DF"), (30, "30"), (60, "60"),
         (90, "90")]


@pytest.fixture(scope="module")
def rate_media(tmp_path_factory):
    root = tmp_path_factory.mktemp("rates")
    out = {}
    for rate, label in RATES:
        p = root / f"r{label}.mp4"
        make_video(p, seconds=40 / rate, fps=Fraction(rate).limit_denominator(1001), size=SIZE,
                   colours=[COLOURS["A"]])
        out[label] = p
    return out


@pytest.mark.parametrize("rate,label", RATES, ids=[lb for _, lb in RATES])
@pytest.mark.parametrize("adapter", ["otio_json", "fcp_xml", "fcpx_xml"])
def test_rates_select_by_record_timecode(rate_media, tmp_path, rate, label, adapter):
    df = label.endswith("DF")
    start = otio.opentime.from_timecode("01:00:00;00" if df else "01:00:00:00", rate) \
        if RT.is_valid_timecode_rate(rate) else RT(3600 * round(rate), rate)
    ref = otio.schema.ExternalReference(target_url=str(rate_media[label]),
                                        available_range=TR(RT(0, rate), RT(40, rate)))
    c = otio.schema.Clip(name="A", media_reference=ref, source_range=TR(RT(3, rate), RT(30, rate)))
    tl = otio.schema.Timeline(name=f"r{label}", global_start_time=start)
    tl.tracks.append(otio.schema.Track(name="V1", children=[c]))
    if adapter == "fcp_xml" and not RT.is_valid_timecode_rate(rate):
        pytest.skip("FCP 7 XML has SMPTE timecode only (its writer refuses 90 fps)")
    path = write(tl, tmp_path / f"r.{ADAPTERS[adapter]}", adapter)
    if adapter == "fcpx_xml":        # as FCPX writes it (the adapter leaves it empty)
        fr = Fraction(rate).limit_denominator(1001)
        path.write_text(path.read_text().replace(
            'frameDuration=""', f'frameDuration="{fr.denominator}/{fr.numerator}s"'))
    back = load_timeline(path)
    sep = ";" if df else ":"
    tc_in, tc_out = f"01:00:00{sep}05", f"01:00:00{sep}15"
    if adapter == "fcpx_xml":
        # the adapter's writer drops the record start; FCPX writes it as tcStart
        assert back.global_start_time is None
        fd = 1 / Fraction(rate).limit_denominator(1001)            # frameDuration, seconds
        text = path.read_text().replace(
            "<sequence ", f'<sequence tcStart="{Fraction(int(start.value)) * fd}s" ', 1)
        path.write_text(text)
        back = load_timeline(path)
        assert back.global_start_time.value == start.value
    sel = select(back, range=(tc_in, tc_out))
    assert (sel.start_time.value, sel.duration.value) == (5, 10)
    assert sel.start_time.rate == pytest.approx(timeline_mod.normalise_rate(rate))
    segs = resolve_segments(back, sel, timeline_path=path)
    frames = list(TimelineFrameSource(segs).frames(None, SIZE))
    assert [read_frame_index(f) for _, f in frames] == list(range(8, 18))


def test_non_smpte_timecode_counts_frames_at_the_rate():
    assert parse_time("00:00:01:45", 90) == RT(135, 90)
    assert parse_time("01:00:00:00", 90) == RT(324000, 90)
    assert format_time(RT(135, 90)) == "00:00:01:45"
    with pytest.raises(UserError, match="not a valid timecode at 90 fps"):
        parse_time("00:00:01:90", 90)


# ------------------------------------------------------------------------ write-back

def _take(path: Path, seconds: float, sr=48000, channels=2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * sr))
    audio = (0.1 * np.sin(np.arange(n) * 2 * np.pi * 440 / sr)).astype(np.float32)
    return write_wav(path, np.repeat(audio[None], channels, 0), sr)


def _score_clip(tl):
    hits = [(t, c) for t in tl.tracks for c in t.find_clips() if ".take-" in c.name]
    assert len(hits) == 1, [c.name for _, c in hits]
    return hits[0]


def test_fcp_xml_write_back_what_premiere_and_resolve_import(media, tmp_path):
    tl, _ = _start_1h(media)
    src = write(tl, tmp_path / "cut.xml", "fcp_xml")
    before = src.read_bytes()
    loaded = load_timeline(src)
    sel = select(loaded, range=("01:00:00:05", "01:00:00:20"))
    take = _take(tmp_path / "takes" / "cut.take-3.wav", sel.duration.to_seconds())
    out = tmp_path / "out" / "cut.scored.xml"
    out.parent.mkdir()
    write_scored_timeline(loaded, sel, [take], out, metadata={"seed": 3, "model": "small"},
                          sample_rate=48000, input_path=src)
    assert src.read_bytes() == before
    root = ET.parse(str(out)).getroot()
    files = [f for f in root.iter("file") if (f.findtext("pathurl") or "").endswith("take-3.wav")]
    assert len(files) == 1
    f = files[0]
    assert f.findtext("pathurl") == take.resolve().as_uri()            # absolute file:// URL
    assert f.findtext("pathurl").startswith("file:///")
    assert f.findtext("media/audio/samplecharacteristics/samplerate") == "48000"
    assert f.findtext("media/audio/samplecharacteristics/depth") == "16"
    assert f.findtext("media/audio/channelcount") == "2"
    assert int(f.findtext("duration")) == 15
    assert f.find("media/video") is None
    item = next(ci for ci in root.iter("clipitem") if f in list(ci))
    assert item.findtext("sourcetrack/mediatype") == "audio"
    names = [t.findtext("name") for t in root.iter("track")]
    assert SCORE_TRACK_NAME in names
    back = load_timeline(out)
    track, c = _score_clip(back)
    assert track.name == SCORE_TRACK_NAME and track.kind == otio.schema.TrackKind.Audio
    rng = c.range_in_parent()
    assert (rng.start_time.value, rng.duration.value) == (5, 15)
    side = json.loads(sidecar_path(out).read_text())            # metadata FCP XML cannot keep
    assert side["diffv2m"]["seed"] == 3 and side["diffv2m"]["selection_start"] == 5
    assert side["takes"][0]["take_path"] == str(take)


@pytest.mark.parametrize("out_adapter", ["fcp_xml", "fcpx_xml", "kdenlive"])
def test_written_timeline_keeps_disabled_clips_and_speed(media, tmp_path, out_adapter):
    """What the viewer saw in the source is what the written timeline shows."""
    fast = clip(media, "B", 4, 5)
    fast.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    still = clip(media, "C", 7, 4)
    still.effects.append(otio.schema.FreezeFrame())
    tl = timeline(clip(media, "A", 5, 10), fast, still, clip(media, "D", 0, 5, enabled=False),
                  clip(media, "A", 30, 5))
    src = write(tl, tmp_path / "fx.otio", "otio_json")
    loaded = load_timeline(src)
    sel = select(loaded)
    want = [(0, 10, "A", 5, 1.0, None), (10, 5, "B", 4, 2.0, None), (15, 4, "C", 7, 0.0, None),
            (19, 5, None, None, 1.0, None), (24, 5, "A", 30, 1.0, None)]
    take = _take(tmp_path / "fx.take-1.wav", sel.duration.to_seconds())
    out = tmp_path / f"fx.scored.{ADAPTERS[out_adapter]}"
    write_scored_timeline(loaded, sel, [take], out, metadata={"seed": 1}, sample_rate=48000,
                          input_path=src)
    if out_adapter == "kdenlive":          # the Kdenlive adapter writes no freeze frame and
        want = [w for w in want if w[4] != 0.0 and w[0] != 19]   # no disabled flag
    if out_adapter == "fcpx_xml":          # the FCPX adapter writes no speed changes
        want = [w for w in want if w[4] == 1.0]
    if out_adapter != "fcp_xml":
        back = load_timeline(out)
        segs = resolve_segments(back, select(back), timeline_path=out)
        assert [s for s in seg_tuples(segs) if s[0] in {w[0] for w in want}] == want
        return
    check_picture(out, want)


@pytest.mark.parametrize("out_adapter", ["fcp_xml", "fcpx_xml", "otio_json"])
def test_edl_sources_write_back_as_fcp_xml_and_fcpx(media, tmp_path, out_adapter):
    edl = tmp_path / "resolve.edl"
    edl.write_text(EDL.format(a="A_tc.mp4", b="B_tc.mp4"))
    tl = load_timeline(edl, rate=25, media_root=media)
    sel = select(tl, range=("01:00:00:04", "01:00:00:12"))
    take = _take(tmp_path / "resolve.take-1.wav", sel.duration.to_seconds())
    out = tmp_path / f"resolve.scored.{ADAPTERS[out_adapter]}"
    write_scored_timeline(tl, sel, [take], out, metadata={"seed": 1}, sample_rate=48000,
                          input_path=edl)
    back = load_timeline(out)
    _, c = _score_clip(back)
    rng = c.range_in_parent()
    assert (rng.start_time.rescaled_to(R).value, rng.duration.rescaled_to(R).value) == (4, 8)
    assert back.global_start_time.rescaled_to(R).value == TC_START     # record TC kept
    segs = resolve_segments(back, sel, timeline_path=out)
    assert seg_tuples(segs) == [(4, 6, "A", 9, 1.0, None), (10, 2, "B", 25, 1.0, None)]


@pytest.mark.parametrize("out_adapter", list(ADAPTERS))
def test_unrelinked_edl_writes_back_to_every_format(media, tmp_path, out_adapter):
    """Clips with no media path (clip-name-only EDL, no --media-root) still write out."""
    edl = tmp_path / "names.edl"
    edl.write_text(EDL.format(a="A_tc", b="B_tc"))
    tl = load_timeline(edl, rate=25)
    sel = select(tl, range=("01:00:00:02", "01:00:00:10"))
    take = _take(tmp_path / "names.take-1.wav", sel.duration.to_seconds())
    out = tmp_path / f"names.scored.{ADAPTERS[out_adapter]}"
    write_scored_timeline(tl, sel, [take], out, metadata={"seed": 1}, sample_rate=48000,
                          input_path=edl)
    back = load_timeline(out)
    _, c = _score_clip(back)
    rng = c.range_in_parent()
    assert (rng.start_time.rescaled_to(R).value, rng.duration.rescaled_to(R).value) == (2, 8)
    assert len(back.video_tracks()[0].find_clips()) == 2


def test_aaf_write_back_when_media_rate_differs_from_the_sequence(media, tmp_path):
    tl = timeline(clip(media, "A", 5, 10), clip(media, "B", 20, 10), gst=RT(TC_START, R))
    src = write(tl, tmp_path / "avid.aaf", "AAF")
    loaded = load_timeline(src)
    for c in loaded.find_clips():       # media described at 23.976 in a 25 fps sequence
        ar = c.media_reference.available_range
        c.media_reference.available_range = TR(ar.start_time.rescaled_to(R23),
                                               ar.duration.rescaled_to(R23))
    sel = select(loaded, range=("01:00:00:04", "01:00:00:16"))
    take = _take(tmp_path / "avid.take-2.wav", sel.duration.to_seconds())
    out = tmp_path / "avid.scored.aaf"
    write_scored_timeline(loaded, sel, [take], out, metadata={"seed": 2}, sample_rate=48000,
                          input_path=src)
    back = load_timeline(out)
    track, c = _score_clip(back)
    assert track.name == SCORE_TRACK_NAME
    rng = c.range_in_parent()
    assert (rng.start_time.value, rng.duration.value) == (4, 12)
    assert urllib.parse.unquote(c.media_reference.target_url).endswith("avid.take-2.wav")
    assert seg_tuples(resolve_segments(back, sel, timeline_path=out)) == \
        [(4, 6, "A", 9, 1.0, None), (10, 6, "B", 20, 1.0, None)]
    assert json.loads(sidecar_path(out).read_text())["diffv2m"]["seed"] == 2


def test_kdenlive_write_back_sets_out_and_keeps_the_project(media, tmp_path):
    tl, _ = _basic(media)
    src = write(tl, tmp_path / "proj.kdenlive", "kdenlive")
    before = src.read_bytes()
    loaded = load_timeline(src)
    sel = select(loaded, range=("5", "20"))
    take = _take(tmp_path / "proj.take-4.wav", sel.duration.to_seconds())
    out = tmp_path / "proj.scored.kdenlive"
    write_scored_timeline(loaded, sel, [take], out, metadata={"seed": 4}, sample_rate=48000,
                          input_path=src)
    assert src.read_bytes() == before
    root = ET.parse(str(out)).getroot()
    main = root.findall("tractor")[-1]
    assert main.get("out") == str(25 - 1)                  # not MLT's 15,000-frame default
    assert all(el.get("out") is not None for el in root
               if el.tag in ("producer", "tractor") and el.get("id") != "black_track")
    # everything the input had is still there
    src_ids = {el.get("id") for el in ET.parse(str(src)).getroot() if el.get("id")}
    assert src_ids <= {el.get("id") for el in root if el.get("id")}
    back = load_timeline(out)
    track, c = _score_clip(back)
    assert track.name == SCORE_TRACK_NAME and track.kind == otio.schema.TrackKind.Audio
    rng = c.range_in_parent()
    assert (rng.start_time.value, rng.duration.value) == (5, 15)
    assert seg_tuples(resolve_segments(back, sel, timeline_path=out)) == \
        seg_tuples(resolve_segments(loaded, sel, timeline_path=src))


def test_adapter_banners_stay_off_stdout(media, tmp_path, capfd):
    tl, _ = _basic(media)
    path = write(tl, tmp_path / "quiet.kdenlive", "kdenlive")
    capfd.readouterr()
    load_timeline(path)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    timeline_mod.VERBOSE = True
    try:
        load_timeline(path)
    finally:
        timeline_mod.VERBOSE = False
    assert "deprecated" in capfd.readouterr().out             # -v lets it through


def test_panel_status_warns_about_a_mostly_black_selection(qtbot, media, tmp_path):
    pytest.importorskip("PySide6")
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import QSettings
    from panel_backend import ToyBackend
    from diffv2m.plugin.panel.panel import ScorePanel
    tl = timeline(clip(media, "A", 5, 4), gap(20), clip(media, "B", 0, 4))
    path = write(tl, tmp_path / "dark.otio", "otio_json")
    panel = ScorePanel(backend=ToyBackend(), settings=QSettings(str(tmp_path / "p.ini"),
                                                                 QSettings.Format.IniFormat),
                       cache_dir=tmp_path / "cache", take_dir=tmp_path)
    qtbot.addWidget(panel)
    assert panel.open_path(path)
    assert "Warning: 71% of the selection has no picture" in panel.status.text()
    assert panel.select_frames(0, 4)
    assert "Warning" not in panel.status.text()
    assert panel.shutdown(10_000)


def test_otio_generators_and_embedded_timecode_without_available_range(media, tmp_path):
    solid = otio.schema.Clip(name="red", source_range=TR(RT(0, R), RT(4, R)),
                             media_reference=otio.schema.GeneratorReference(
                                 generator_kind="SolidColor",
                                 parameters={"color": [0.8, 0.2, 0.1]}))
    bars = otio.schema.Clip(name="bars", source_range=TR(RT(0, R), RT(3, R)),
                            media_reference=otio.schema.GeneratorReference(
                                generator_kind="SMPTEBars"))
    tc = clip(media, "B", 0, 6, file="B_tc")
    tc.media_reference.available_range = None           # as EDLs give it: no media range
    tc.source_range = TR(RT(TC_START + 12, R), RT(6, R))  # 01:00:00:12 in the media's own TC
    path = write(timeline(solid, bars, tc), tmp_path / "gen.otio", "otio_json")
    _, segs = check_picture(path, [(0, 4, None, None, 1.0, (204, 51, 26)),
                                   (4, 3, None, None, 1.0, None), (7, 6, "B", 12, 1.0, None)])
    assert any("'bars'" in n and "black" in n for n in segs.notes)


@pytest.mark.parametrize("adapter", ["otio_json", "fcp_xml", "kdenlive"])
def test_one_frame_marker_selects_to_the_end_of_the_clip_under_it(media, tmp_path, adapter):
    tl = timeline(clip(media, "A", 5, 20), clip(media, "B", 20, 10))
    tl.tracks.markers.append(otio.schema.Marker(name="hit", marked_range=TR(RT(8, R), RT(1, R))))
    path = write(tl, tmp_path / f"mk.{ADAPTERS[adapter]}", adapter)
    back = load_timeline(path)
    assert [n for n, _ in list_markers(back)] == ["hit"]
    sel = select(back, marker="hit")
    assert (sel.start_time.value, sel.duration.value) == (8, 12)          # to A's end at 20
    sel = select(back, marker="hit", duration="00:00:00:20")
    assert (sel.start_time.value, sel.duration.value) == (8, 20)
