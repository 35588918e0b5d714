"""``diffv2m score --midi PATH --stems DIR``: the first take's notes and one WAV per track,
the stems as muted "Diff-V2M <track>" audio tracks aligned like the mix, in every format the
mix is written to; all in the one output transaction (embedded model, 2 steps, 2 s)."""
from __future__ import annotations

import json
import os
import signal
import sys
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from faults import call_cli, error_lines, snapshot  # noqa: E402
from test_score_formats import (R, build, render_audio, run, score_clip,  # noqa: E402
                                skip_unless_melt)

from diffv2m import assets, media  # noqa: E402
from diffv2m.plugin.timeline import load_timeline  # noqa: E402
from diffv2m.plugin.timeline_writer import stem_track_name  # noqa: E402
from diffv2m.score.events import TRACKS  # noqa: E402
from diffv2m.score.midi import read_midi  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (assets.model_onnx_dir("score") / "manifest.json").exists()
    or not (assets.model_onnx_dir("audio") / "manifest.json").exists(),
    reason="the embedded models' ONNX graphs are not built")

#: output adapter -> suffix; the input is written in the same format where tests can write
#: it (build), else as OTIO
OUT = {"otio_json": "otio", "fcp_xml": "xml", "fcpx_xml": "fcpxml", "kdenlive": "kdenlive",
       "AAF": "aaf", "diffv2m_mlt": "mlt"}
INPUT = {"fcpx_xml", "kdenlive", "AAF", "diffv2m_mlt"}
MUTED_TRACKS = {"otio_json", "fcp_xml", "kdenlive", "diffv2m_mlt"}   # FCPX: clips; AAF: none


@pytest.fixture(scope="module", params=list(OUT))
def stemmed(request, tmp_path_factory):
    adapter = request.param
    root = tmp_path_factory.mktemp(f"stems-{adapter}")
    src = build(root, adapter if adapter in INPUT else "otio_json")
    out = root / "out" / f"cut.scored.{OUT[adapter]}"
    out.parent.mkdir()
    mid, stems = root / "out" / "cut.mid", root / "out" / "stems"
    res = run("score", str(src), "--range", "25-75", "--steps", "2", "--seed", "3",
              "-o", str(out), "--midi", str(mid), "--stems", str(stems), "-q")
    return adapter, out, mid, stems, res


def test_midi_and_stems_of_the_take(stemmed):
    adapter, out, mid, stems, res = stemmed
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stderr == ""
    assert f"{mid}  (MIDI of seed 3" in res.stdout and f"{stems}  (stems of seed 3" in res.stdout
    take = out.parent / "cut.take-3.wav"
    mix = media.read_audio(take, 48000, mono=False)
    meta = media.read_audio_metadata(take)
    assert sorted(p.name for p in stems.iterdir()) == sorted(f"{t}.wav" for t in TRACKS)
    parts = {t: media.read_audio(stems / f"{t}.wav", 48000, mono=False) for t in TRACKS}
    assert all(a.shape == mix.shape for a in parts.values())            # same length
    assert np.max(np.abs(sum(parts.values()) - mix)) < 2e-3             # they sum to the mix
    assert media.read_audio_metadata(stems / "melody.wav")["stem"] == "melody"
    score = read_midi(mid)
    assert len(score.notes) == meta["notes"] > 0
    assert score.tempo_bpm == pytest.approx(meta.get("tempo_bpm", 120.0), abs=1e-3)


def test_stems_are_muted_tracks_aligned_with_the_mix(stemmed):
    adapter, out, mid, stems, res = stemmed
    assert res.returncode == 0, res.stderr[-2000:]
    back = load_timeline(out)
    mix_track, mix = score_clip(back)                 # still exactly one take clip
    want = (mix.range_in_parent().start_time.rescaled_to(R).value,
            mix.range_in_parent().duration.rescaled_to(R).value)
    assert want == (25, 50) and mix_track.enabled and mix.enabled
    for t in TRACKS:
        name = stem_track_name(t)
        hits = [(tr, c) for tr in back.tracks for c in tr.find_clips() if c.name == name]
        assert len(hits) == 1, (t, [c.name for tr in back.tracks for c in tr.find_clips()])
        track, c = hits[0]
        assert track.kind == otio.schema.TrackKind.Audio
        rng = c.range_in_parent()
        assert (rng.start_time.rescaled_to(R).value, rng.duration.rescaled_to(R).value) == want
        assert urllib.parse.unquote(c.media_reference.target_url).endswith(f"stems/{t}.wav")
        if adapter != "fcpx_xml":                                   # FCPX has no track names
            assert track.name == name
        if adapter in MUTED_TRACKS:
            assert not track.enabled, (adapter, t)
        if adapter == "fcpx_xml":
            assert not c.enabled
    if adapter == "otio_json":
        written = otio.adapters.read_from_file(str(out))
        md = written.metadata["diffv2m"]
    else:
        side = json.loads((out.parent / f"{out.name}.diffv2m.json").read_text())
        assert [s["stem"] for s in side["stems"]] == list(TRACKS)
        assert [s["track"] for s in side["takes"]] == ["Diff-V2M score"]
        md = side["diffv2m"]
    assert {t: Path(p).name for t, p in md["stems"].items()} == {t: f"{t}.wav" for t in TRACKS}


def test_fcp_xml_describes_each_stem_file(stemmed):
    adapter, out, mid, stems, res = stemmed
    if adapter != "fcp_xml":
        pytest.skip("FCP 7 XML only")
    root = ET.parse(str(out)).getroot()
    for t in TRACKS:
        uri = (stems / f"{t}.wav").resolve().as_uri()
        files = [f for f in root.iter("file") if f.findtext("pathurl") == uri]
        assert len(files) == 1, t
        assert files[0].findtext("media/audio/samplecharacteristics/samplerate") == "48000"
        assert files[0].findtext("media/audio/channelcount") == "2"
    names = [tr.findtext("name") for tr in root.iter("track")]
    assert {stem_track_name(t) for t in TRACKS} <= set(names)
    enabled = {tr.findtext("name"): tr.findtext("enabled") for tr in root.iter("track")}
    assert all(enabled[stem_track_name(t)] == "FALSE" for t in TRACKS)


def test_melt_plays_the_mix_once_with_the_stems_muted(stemmed, tmp_path):
    adapter, out, mid, stems, res = stemmed
    skip_unless_melt(adapter)
    assert res.returncode == 0, res.stderr[-2000:]
    _, audio = render_audio(out, tmp_path / "r.mp4")
    take = media.read_audio(out.parent / "cut.take-3.wav", 8000)[0]
    rendered = audio[int(1.0 * 8000):int(1.0 * 8000) + len(take)]
    level = float(np.sqrt(np.mean(rendered ** 2)) / max(np.sqrt(np.mean(take ** 2)), 1e-9))
    assert 0.7 < level < 1.4, level            # the mix once; unmuted stems would double it


# ------------------------------------------------------------------------- bad input

def _otio_src(root: Path) -> Path:
    return build(root, "otio_json")


def test_bad_midi_and_stems_paths_are_one_line_exit_2_nothing_written(tmp_path):
    src = _otio_src(tmp_path)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    (tmp_path / "link.mid").symlink_to(src)                       # an output onto an input
    cases = [
        (["--midi", tmp_path / "nope" / "a.mid"], "does not exist"),
        (["--stems", tmp_path / "nope" / "stems"], "does not exist"),
        (["--stems", full], "not empty"),
        (["--midi", tmp_path / "a.txt"], ".mid"),
        (["--midi", tmp_path / "link.mid"], "over an input"),
        (["--midi", tmp_path / "m.mid", "--stems", tmp_path / "s", "--model", "audio"],
         "score-family"),
        (["--stems", tmp_path / "s", "--onnx-dir", assets.model_onnx_dir("audio")],
         "score-family"),
        (["--mode", "minor", "--model", "audio"], "score-family"),
    ]
    before = snapshot(tmp_path)
    for extra, words in cases:
        rc, out, err = call_cli("score", src, "--range", "25-75", "--steps", "1", "-q",
                                "-o", tmp_path / "out.otio", *extra)
        lines = error_lines(err)
        assert rc == 2 and len(lines) == 1 and words in lines[0], (extra, err)
        assert "Traceback" not in err and out == ""
        assert snapshot(tmp_path) == before, extra


def test_a_failing_timeline_write_takes_back_midi_and_stems(tmp_path, monkeypatch):
    src = _otio_src(tmp_path)
    before = snapshot(tmp_path)

    def refuse(*_a, **_k):
        raise RuntimeError("no room in this sequence")
    monkeypatch.setattr(otio.adapters, "write_to_file", refuse)
    rc, _, err = call_cli("score", src, "--range", "25-75", "--steps", "1", "-q",
                          "-o", tmp_path / "cut.scored.xml", "--midi", tmp_path / "cut.mid",
                          "--stems", tmp_path / "stems")
    assert rc == 2 and len(error_lines(err)) == 1 and "removed" in err, err
    assert snapshot(tmp_path) == before                  # stems, their folder, MIDI: gone


def test_sigint_while_sampling_leaves_nothing(tmp_path):
    from test_nothing_lost import _signal_at
    src = _otio_src(tmp_path)
    before = snapshot(tmp_path)
    rc, err = _signal_at(["score", src, "--range", "0-150", "--steps", "400",
                          "-o", tmp_path / "o.otio", "--midi", tmp_path / "o.mid",
                          "--stems", tmp_path / "stems"], "sampling", signal.SIGINT)
    assert rc == 130, err
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before


def test_stems_with_several_takes_belong_to_the_first(tmp_path):
    src = _otio_src(tmp_path)
    out = tmp_path / "o" / "cut.scored.otio"
    out.parent.mkdir()
    rc, stdout, err = call_cli("score", src, "--range", "25-75", "--steps", "1", "-q",
                               "--takes", "2", "--seed", "7", "-o", out,
                               "--midi", tmp_path / "o" / "cut.mid",
                               "--stems", tmp_path / "o" / "stems")
    assert rc == 0, err
    take = media.read_audio(out.parent / "cut.take-7.wav", 48000, mono=False)
    total = sum(media.read_audio(p, 48000, mono=False)
                for p in sorted((tmp_path / "o" / "stems").iterdir()))
    assert np.max(np.abs(total - take)) < 2e-3
    assert "(MIDI of seed 7" in stdout
    tl = otio.adapters.read_from_file(str(out))
    assert [t.name for t in tl.tracks][-len(TRACKS) - 2:] == (
        ["Diff-V2M score", "Diff-V2M score (take 2)"] + [stem_track_name(t) for t in TRACKS])
    assert os.path.isfile(out)
