"""``diffv2m score``: a real timeline in, takes + a NEW timeline out, on the torch-free runtime
with the embedded default model's exported graphs."""
from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from diffv2m import assets, media
from mediagen import make_video

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange
R23 = 24000 / 1001
R29 = 30000 / 1001

pytestmark = pytest.mark.skipif(not (assets.default_onnx_dir() / "manifest.json").exists(),
                                reason="the embedded default model's ONNX graphs are not built")


def run(*args):
    return subprocess.run([sys.executable, "-m", "diffv2m", *args], capture_output=True,
                          text=True, timeout=600)


def build_timeline(root: Path, rate: float, name: str) -> Path:
    """V1: A, transition, B, gap, C; V2 (top): gap, D over part of B. Media rendered here."""
    (root / "media").mkdir(exist_ok=True)
    fr = Fraction(rate).limit_denominator(1001)
    for i, c in enumerate("ABCD"):
        make_video(root / "media" / f"{c}.mp4", seconds=6, fps=fr, size=(96, 64),
                   colours=[(60 * i + 40, 200 - 40 * i, 80)], cut_times=(2.0, 4.0))

    def clip(c, start, dur):
        ref = otio.schema.ExternalReference(target_url=f"media/{c}.mp4",
                                            available_range=TR(RT(0, rate), RT(int(6 * rate) - 1, rate)))
        return otio.schema.Clip(name=c, media_reference=ref,
                                source_range=TR(RT(start, rate), RT(dur, rate)))

    v1 = otio.schema.Track(name="V1")
    v1.extend([clip("A", 0, 72), otio.schema.Transition(in_offset=RT(6, rate), out_offset=RT(6, rate)),
               clip("B", 12, 96), otio.schema.Gap(source_range=TR(RT(0, rate), RT(24, rate))),
               clip("C", 0, 48)])
    v2 = otio.schema.Track(name="V2")
    v2.extend([otio.schema.Gap(source_range=TR(RT(0, rate), RT(100, rate))), clip("D", 0, 30)])
    tl = otio.schema.Timeline(name=name, tracks=[v1, v2])
    tc = "01:00:00;00" if abs(rate - R29) < 1e-6 else "01:00:00:00"
    tl.global_start_time = otio.opentime.from_timecode(tc, rate)
    path = root / f"{name}.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    src = build_timeline(root, R23, "cut23")
    original = src.read_bytes()
    out = root / "out" / "cut23.scored.otio"
    res = run("score", str(src), "--range", "01:00:02:00-01:00:09:12", "--seed", "5",
              "--takes", "2", "--steps", "8", "-o", str(out), "-q")
    assert res.returncode == 0, res.stderr[-3000:]
    return root, src, original, out, res


def test_new_timeline_has_the_score_at_the_selection(scored):
    root, src, original, out, _ = scored
    assert src.read_bytes() == original                    # never modified in place
    tl = otio.adapters.read_from_file(str(out))
    tracks = [t for t in tl.tracks if t.name.startswith("Diff-V2M score")]
    assert len(tracks) == 2                                # --takes 2 as alternate tracks
    sel_start, sel_dur = RT(48, R23), RT(9 * 24 + 12 - 48, R23)
    for track in tracks:
        clips = list(track.find_clips())
        assert len(clips) == 1
        rng = clips[0].range_in_parent()
        assert rng.start_time.value == sel_start.value
        assert rng.duration.value == sel_dur.value


def test_takes_have_the_selection_length_and_record_their_seed(scored):
    root, _, _, out, _ = scored
    for seed in (5, 6):
        wav = out.parent / f"cut23.take-{seed}.wav"
        audio = media.read_audio(wav, 24000)
        assert abs(audio.shape[1] / 24000 - (9.5 - 2.0) * 1.001) < 0.01
        assert np.abs(audio).max() > 1e-3                 # not silent
        meta = media.read_audio_metadata(wav)
        assert meta["seed"] == seed and meta["steps"] == 8


def test_metadata_round_trips_and_adapters_read_the_result(scored, tmp_path):
    _, _, _, out, _ = scored
    tl = otio.adapters.read_from_file(str(out))
    meta = tl.metadata["diffv2m"]
    assert meta["seed"] == 5 and meta["steps"] == 8 and "onnxruntime" in meta["backend"]
    assert meta["graph_hashes"]
    xml = tmp_path / "scored.xml"
    otio.adapters.write_to_file(tl, str(xml), adapter_name="fcp_xml")
    back = otio.adapters.read_from_file(str(xml), adapter_name="fcp_xml")
    urls = [getattr(c.media_reference, "target_url", "") for t in back.audio_tracks()
            for c in t.find_clips()]
    assert any("cut23.take-5.wav" in u for u in urls), urls
    # EDL carries one video track and no audio: its writer/reader round-trips the picture
    v_only = otio.schema.Timeline(tracks=[tl.video_tracks()[0].clone()])
    edl = tmp_path / "cut.edl"
    otio.adapters.write_to_file(v_only, str(edl), adapter_name="cmx_3600", rate=R23)
    assert len(list(otio.adapters.read_from_file(str(edl), rate=R23).find_clips())) >= 2


def test_new_seed_reuses_cached_features(scored, tmp_path):
    root, src, _, _, _ = scored
    from diffv2m.plugin.session import ScoringSession
    from diffv2m.runtime.ort import load_runtime
    from diffv2m.synthesis import Settings
    session = ScoringSession(src, load_runtime(), cache_dir=tmp_path / "cache", take_dir=tmp_path)
    session.select(range=("01:00:02:00", "01:00:09:12"))
    stages = []
    session.generate(Settings(seed=1, steps=4), progress=lambda s, d, n: stages.append(s))
    assert "features" in stages
    stages.clear()
    session.generate(Settings(seed=2, steps=4), progress=lambda s, d, n: stages.append(s))
    assert "features" not in stages and "sampling" in stages


def test_drop_frame_timeline_scores_by_drop_frame_timecode(tmp_path):
    src = build_timeline(tmp_path, R29, "cut29")
    out = tmp_path / "cut29.scored.otio"
    res = run("score", str(src), "--range", "01:00:01;00-01:00:04;00", "--steps", "4",
              "-o", str(out), "-q")
    assert res.returncode == 0, res.stderr[-2000:]
    tl = otio.adapters.read_from_file(str(out))
    clip = next(t for t in tl.tracks if t.name.startswith("Diff-V2M score")).find_clips()[0]
    assert clip.range_in_parent().start_time.value == 30
    assert clip.range_in_parent().duration.value == 90


@pytest.mark.parametrize("problem", ["missing_media", "url", "empty", "past_end"])
def test_bad_selection_or_media_is_one_line_exit_2_nothing_written(tmp_path, problem):
    src = build_timeline(tmp_path, R23, "bad")
    args = ["--range", "01:00:01:00-01:00:03:00"]
    if problem == "missing_media":
        (tmp_path / "media" / "A.mp4").unlink()
    elif problem == "url":
        tl = otio.adapters.read_from_file(str(src))
        tl.find_clips()[0].media_reference.target_url = "https://example.invalid/A.mp4"
        otio.adapters.write_to_file(tl, str(src))
    elif problem == "empty":
        args = ["--range", "01:00:01:00-01:00:01:00"]
    else:
        args = ["--range", "01:00:30:00-01:00:40:00"]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    res = run("score", str(src), *args, "-o", str(tmp_path / "out.otio"), "-q")
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
