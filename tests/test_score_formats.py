"""``diffv2m score`` on FCPX, Kdenlive and AAF files the tests write, on the embedded model
(2 sampler steps, 2 s selections, 64x48 media: cheap), and the scored Kdenlive project
rendered by MLT's ``melt``."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.parse
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from mediagen import make_video  # noqa: E402

from diffv2m import assets, media  # noqa: E402
from diffv2m.plugin import timeline as timeline_mod  # noqa: E402
from diffv2m.plugin.timeline import load_timeline  # noqa: E402

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange
R = 25

pytestmark = pytest.mark.skipif(not (assets.default_onnx_dir() / "manifest.json").exists(),
                                reason="the embedded default model's ONNX graphs are not built")

FORMATS = {"fcpx_xml": "fcpxml", "kdenlive": "kdenlive", "AAF": "aaf", "diffv2m_mlt": "mlt"}


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "diffv2m", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def build(root: Path, adapter: str, *, marker: bool = False) -> Path:
    """V1: A (4 s) then B (2 s) at 25 fps; media rendered here, referenced by absolute path."""
    (root / "media").mkdir(exist_ok=True)
    clips = []
    for name, colour, src, dur in (("A", (200, 60, 40), 0, 100), ("B", (40, 80, 200), 10, 50)):
        p = root / "media" / f"{name}.mp4"
        make_video(p, seconds=6, fps=Fraction(R), size=(64, 48), colours=[colour],
                   cut_times=(1.0, 2.0, 3.0))
        ref = otio.schema.ExternalReference(target_url=str(p.resolve()),
                                            available_range=TR(RT(0, R), RT(150, R)))
        clips.append(otio.schema.Clip(name=name, media_reference=ref,
                                      source_range=TR(RT(src, R), RT(dur, R))))
    if adapter == "diffv2m_mlt":                                 # Shotcut writes these
        from test_timeline_formats import shotcut_mlt
        return shotcut_mlt(root / "cut.mlt", [("V1", False, [
            (c.media_reference.target_url, int(c.source_range.start_time.value),
             int(c.source_range.end_time_inclusive().value)) for c in clips])])
    tl = otio.schema.Timeline(name="cut", tracks=[otio.schema.Track(name="V1", children=clips)])
    if marker:
        tl.tracks.markers.append(otio.schema.Marker(name="hit",
                                                    marked_range=TR(RT(40, R), RT(1, R))))
    path = root / f"cut.{FORMATS.get(adapter, 'otio')}"
    kw = {"use_empty_mob_ids": True} if adapter == "AAF" else {}
    with timeline_mod.adapter_output():
        otio.adapters.write_to_file(tl, str(path), adapter_name=adapter, **kw)
    return path


def score_clip(tl):
    hits = [(t, c) for t in tl.tracks for c in t.find_clips() if ".take-" in c.name]
    assert len(hits) == 1, [c.name for _, c in hits]
    return hits[0]


@pytest.fixture(scope="module", params=list(FORMATS))
def scored(request, tmp_path_factory):
    adapter = request.param
    root = tmp_path_factory.mktemp(f"score-{adapter}")
    src = build(root, adapter)
    before = src.read_bytes()
    out = root / "out" / f"cut.scored.{FORMATS[adapter]}"
    out.parent.mkdir()
    res = run("score", str(src), "--range", "25-75", "--steps", "2", "--seed", "3",
              "-o", str(out), "-q")
    return adapter, root, src, before, out, res


def test_score_each_format_writes_the_same_format_back(scored):
    adapter, root, src, before, out, res = scored
    assert res.returncode == 0, res.stderr[-2000:]
    assert src.read_bytes() == before                            # original byte-identical
    assert "deprecated" not in res.stdout + res.stderr           # adapter banners kept off
    assert res.stderr == ""
    take = out.parent / "cut.take-3.wav"
    assert take.is_file() and f"{take}  (seed 3" in res.stdout
    back = load_timeline(out)                                    # re-readable, same adapter
    track, c = score_clip(back)
    rng = c.range_in_parent()
    assert (rng.start_time.rescaled_to(R).value, rng.duration.rescaled_to(R).value) == (25, 50)
    assert track.kind == otio.schema.TrackKind.Audio
    if adapter != "fcpx_xml":                                   # FCPX has no track names
        assert track.name == "Diff-V2M score"
    if adapter in ("kdenlive", "diffv2m_mlt"):
        assert track.name == "Diff-V2M score"
    url = urllib.parse.unquote(c.media_reference.target_url)
    assert url.endswith("cut.take-3.wav")
    side = json.loads((out.parent / f"{out.name}.diffv2m.json").read_text())
    assert side["takes"][0]["track"] == "Diff-V2M score" and side["diffv2m"]["seed"] == 3
    assert side["diffv2m"]["selection_start"] == 25 and side["diffv2m"]["steps"] == 2


def skip_unless_melt(adapter: str) -> None:
    """Skip unless ``adapter`` writes an MLT project and ``melt`` is there to render it."""
    if adapter not in ("kdenlive", "diffv2m_mlt"):
        pytest.skip("melt renders MLT projects only")
    if shutil.which("melt") is None:
        pytest.skip("melt is not installed (CI installs the Debian package)")


def test_scored_kdenlive_and_mlt_render_with_melt(scored, tmp_path):
    adapter, root, src, before, out, res = scored
    skip_unless_melt(adapter)
    assert res.returncode == 0, res.stderr[-2000:]
    seconds, audio = render_audio(out, tmp_path / "render.mp4")
    assert abs(seconds - 6.0) < 0.2                        # stops at the project's end
    assert_take_placed(audio, out.parent / "cut.take-3.wav", at=1.0)


def assert_take_placed(audio: np.ndarray, take: Path, *, at: float, rate: int = 8000) -> None:
    """The take sounds in the render where it was placed (its envelope lines up there, to
    20 ms) and the render is silent outside it, whatever notes the take holds."""
    own = media.read_audio(take, rate)[0]
    hop = rate // 50

    def env(x):
        x = x[: len(x) // hop * hop].reshape(-1, hop)
        return np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=1))

    a, t = env(audio), env(own)
    lags = range(0, len(a) - len(t) + 1)
    score = [float(np.dot(a[k:k + len(t)], t)) for k in lags]
    assert abs(int(np.argmax(score)) / 50 - at) <= 0.02, (np.argmax(score) / 50, at)
    span = slice(int(at * rate), int((at + len(own) / rate) * rate))
    assert float(np.sqrt(np.mean(audio[span] ** 2))) > 1e-3                 # music in the span
    outside = np.concatenate([audio[: max(0, span.start - rate // 10)],
                              audio[span.stop + rate // 10:]])
    assert float(np.sqrt(np.mean(outside ** 2))) < 1e-4                     # silence elsewhere


def render_audio(project: Path, mp4: Path):
    r = subprocess.run(["melt", "-quiet", str(project), "-consumer", f"avformat:{mp4}",
                        "acodec=aac", "vcodec=libx264", "ar=48000", "ac=2",
                        "real_time=0"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return media.probe(mp4).duration, media.read_audio(mp4, 8000)[0]


def test_otio_scored_into_a_kdenlive_project_renders_with_melt(tmp_path):
    if shutil.which("melt") is None:
        pytest.skip("melt is not installed (CI installs the Debian package)")
    src = build(tmp_path, "otio_json")
    out = tmp_path / "cut.scored.kdenlive"
    res = run("score", str(src), "--range", "100-150", "--steps", "2", "-o", str(out), "-q")
    assert res.returncode == 0, res.stderr[-2000:]
    seconds, audio = render_audio(out, tmp_path / "r.mp4")
    assert abs(seconds - 6.0) < 0.2
    assert_take_placed(audio, tmp_path / "cut.take-0.wav", at=4.0)          # frames 100-150


def test_point_marker_with_and_without_duration(tmp_path):
    src = build(tmp_path, "otio_json", marker=True)
    for extra, want in (([], (40, 60)), (["--duration", "1s"], (40, 25))):
        out = tmp_path / f"m{len(extra)}.otio"
        res = run("score", str(src), "--marker", "hit", *extra, "--steps", "2", "-o", str(out),
                  "-q")
        assert res.returncode == 0, res.stderr[-2000:]
        _, c = score_clip(otio.adapters.read_from_file(str(out)))
        rng = c.range_in_parent()
        assert (rng.start_time.value, rng.duration.value) == want   # to the end of clip A


def test_an_edl_output_is_refused_before_any_take_is_made(tmp_path):
    src = build(tmp_path, "otio_json")
    res = run("score", str(src), "--range", "0-25", "--steps", "2", "-o",
              str(tmp_path / "cut.scored.edl"), "-q")
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert "EDL cannot carry the music" in res.stderr
    assert not list(tmp_path.glob("*.wav")) and not (tmp_path / "cut.scored.edl").exists()


def test_failed_write_removes_the_take(tmp_path, monkeypatch, capsys):
    """The adapter fails while writing (after the take was made): one line saying the take
    was removed, and nothing new on disk."""
    from diffv2m.cli import main
    src = build(tmp_path, "otio_json")
    before = sorted(p.name for p in tmp_path.iterdir())

    def refuse(*_a, **_k):
        raise RuntimeError("no room in this sequence")
    monkeypatch.setattr(otio.adapters, "write_to_file", refuse)
    rc = main(["score", str(src), "--range", "0-25", "--steps", "2", "-q",
               "-o", str(tmp_path / "cut.scored.xml")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "cannot write this timeline: no room in this sequence" in err and "removed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before