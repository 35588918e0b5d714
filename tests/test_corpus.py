"""The offline corpus builder: manifest, determinism, resume, and cuts that land on beats.

The smoke corpus (--minutes 2: 12 clips of 10 s) is built once per module; the acceptance
checks read its media back independently (PyAV decode for cuts, librosa for beats).
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

from diffv2m import cli
from diffv2m.data import footage, manifest, music
from diffv2m.data.corpus import build_corpus
from diffv2m.errors import Cancelled, UserError

pytestmark = pytest.mark.skipif(not Path(music.SOUNDFONTS[0]).is_file(),
                                reason="no GM soundfont installed")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    t0 = time.perf_counter()
    rep = build_corpus(out, minutes=2, seed=0)
    print(f"\nsmoke corpus: {len(rep.records)} clips built in {time.perf_counter() - t0:.1f} s")
    return out, rep


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    return out, build_corpus(out, minutes=0.5, seed=7)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- smoke corpus
def test_smoke_manifest_is_valid(smoke):
    import av
    import soundfile as sf
    out, rep = smoke
    recs = manifest.read_manifest(out / "manifest.jsonl")
    assert len(recs) == 12 and [r["id"] for r in recs] == [r["id"] for r in rep.records]
    assert sum(r["duration"] for r in recs) == pytest.approx(120.0)
    assert len({r["piece"] for r in recs}) >= 2
    for r in recs:
        assert r["split"] == manifest.split_of(r["piece"])
        assert r["cls"] in (0, 1, 2) and r["mode"] in ("major", "minor")
        assert 69 <= r["tempo"] <= 151
        assert len(r["beat_times"]) >= 10 * r["tempo"] / 60 - 1
        frames = np.array(r["cut_times"]) * r["fps"]
        assert np.allclose(frames, np.round(frames), atol=1e-4)        # frame-aligned
        info = sf.info(str(out / r["audio"]))
        assert (info.samplerate, info.channels, info.frames) == (24000, 1, 240000)
        with av.open(str(out / r["video"])) as c:
            v = c.streams.video[0]
            assert (v.codec_context.name, v.width, v.height) == ("h264", 128, 72)
            assert v.codec_context.pix_fmt == "yuv420p" and float(v.average_rate) == 24
            assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"
            assert sum(1 for _ in c.decode(video=0)) == 240
    # no temporary files left
    assert not list(out.rglob(".*.part*"))


def test_cut_times_lie_on_beats(smoke):
    out, _ = smoke
    n_cuts = 0
    for r in manifest.read_manifest(out / "manifest.jsonl"):
        beats = np.array(r["beat_times"])
        for c in r["cut_times"]:
            assert np.min(np.abs(beats - c)) <= 1.0 / r["fps"] + 1e-6, (r["id"], c)
            n_cuts += 1
    assert n_cuts >= 12


def test_cuts_detected_in_decoded_video_match_manifest(smoke):
    """Independent of the builder: mean-abs-diff between consecutive decoded frames."""
    import av
    out, _ = smoke
    for r in manifest.read_manifest(out / "manifest.jsonl"):
        with av.open(str(out / r["video"])) as c:
            decoded = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
        times = np.array([t for t, _ in decoded])
        frames = np.stack([f for _, f in decoded]).astype(np.float32)
        mad = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
        detected = times[1:][mad > 30.0]
        expected = np.array(r["cut_times"])
        assert len(detected) == len(expected), (r["id"], detected, expected)
        assert np.all(np.abs(detected - expected) <= 1.0 / r["fps"] + 1e-6), r["id"]


def test_beats_detected_in_wav_agree_with_manifest(smoke):
    import librosa
    import soundfile as sf
    out, _ = smoke
    hits = found = n_detected = n_expected = 0
    for r in manifest.read_manifest(out / "manifest.jsonl"):
        y, sr = sf.read(str(out / r["audio"]), dtype="float32")
        _, det = librosa.beat.beat_track(y=y, sr=sr, units="time")
        grid = np.array(r["beat_times"])
        inner = grid[(grid > 0.5) & (grid < r["duration"] - 0.5)]
        hits += sum(np.min(np.abs(grid - b)) < 0.07 for b in det)
        n_detected += len(det)
        found += sum(len(det) and np.min(np.abs(det - b)) < 0.07 for b in inner)
        n_expected += len(inner)
    assert hits / n_detected >= 0.8                 # detected beats sit on the grid
    assert found / n_expected >= 0.6                # and most grid beats are found


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_corpus_whatever_the_workers(small, tmp_path):
    out_a, rep_a = small
    out_b = tmp_path / "b"
    rep_b = build_corpus(out_b, minutes=0.5, seed=7, workers=2)
    assert len(rep_a.records) == 3
    assert (out_a / "manifest.jsonl").read_bytes() == (out_b / "manifest.jsonl").read_bytes()
    for r in rep_b.records:
        assert _sha(out_a / r["audio"]) == _sha(out_b / r["audio"])
    assert music.candidate_pieces(8)[:5] != music.candidate_pieces(7)[:5]
    assert sorted(music.candidate_pieces(8)) == sorted(music.candidate_pieces(7))


def test_resume_renders_only_the_missing_clip(small):
    out, rep = small
    victim = rep.records[1]
    keep = {p: p.stat().st_mtime_ns for p in (out / "clips").iterdir()
            if not p.name.startswith(victim["id"] + ".")}
    before = (out / "manifest.jsonl").read_bytes()
    for key in ("video", "audio"):
        (out / victim[key]).unlink()
    again = build_corpus(out, minutes=0.5, seed=7)
    assert again.rendered == [victim["id"]]
    assert (out / "manifest.jsonl").read_bytes() == before
    assert {p: p.stat().st_mtime_ns for p in keep} == keep
    assert build_corpus(out, minutes=0.5, seed=7).rendered == []


def test_other_settings_in_an_existing_corpus_are_refused(small):
    out, _ = small
    with pytest.raises(UserError, match="corpus.json"):
        build_corpus(out, minutes=0.5, seed=8)


def test_cancel_leaves_no_partial_files_and_resumes(tmp_path):
    def progress(stage, done, total):
        if stage == "render" and done >= 1:
            raise Cancelled()

    with pytest.raises(Cancelled):
        build_corpus(tmp_path, minutes=0.5, seed=7, progress=progress)
    assert not list(tmp_path.rglob(".*.part*"))
    names = {p.name for p in (tmp_path / "clips").iterdir()}
    for stem in {n.split(".")[0] for n in names}:      # every clip that exists is whole
        assert {f"{stem}.mp4", f"{stem}.wav", f"{stem}.json"} <= names
    rep = build_corpus(tmp_path, minutes=0.5, seed=7)
    assert len(rep.rendered) < len(rep.records) == 3


# ----------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("bad", [["--minutes", "lots", "--seed", "1"],
                                 ["--minutes", "1", "--seed", "1", "--size", "127x72"],
                                 ["--minutes", "1"]])
def test_cli_bad_argument_exits_2_with_one_line(bad, tmp_path, capsys):
    assert cli.main(["corpus", "build", str(tmp_path / "c"), *bad]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("diffv2m: error:")
    assert not (tmp_path / "c" / "manifest.jsonl").exists()


# ----------------------------------------------------------------------------- pieces
def test_grade_follows_mood():
    grey = np.full((4, 4, 3), 0.5, np.float32)
    dark = footage.apply_grade(grey.copy(), footage.grade_params("minor", 0.0))
    bright = footage.apply_grade(grey.copy(), footage.grade_params("major", 1.0))
    assert dark.mean() < bright.mean()
    assert dark[..., 2].mean() > dark[..., 0].mean()           # cool
    assert bright[..., 0].mean() > bright[..., 2].mean()       # warm


def test_manifest_validation_names_the_problem(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text(json.dumps({"id": "x"}) + "\n")
    with pytest.raises(UserError, match=r"manifest.jsonl:1: missing field 'video'"):
        manifest.read_manifest(path)
    path.write_text("not json\n")
    with pytest.raises(UserError, match="not a JSON object"):
        manifest.read_manifest(path)


def test_midi_file_has_exact_tempo_and_drums_on_the_beat_grid():
    from music21 import converter
    piece = music.Piece(name="t", onset_ql=np.arange(16.0), dur_ql=np.ones(16),
                        pitch=np.full(16, 60), part=np.zeros(16, np.int64), n_parts=1,
                        beat_ql=1.0, beats_per_bar=4, first_downbeat_ql=0.0, length_ql=16.0,
                        mode="major")
    arr = music.Arrangement(piece="t", tempo=120.0, us_per_quarter=500000, ensemble="piano",
                            programs=[0], drums="groove", span_ql=(4.0, 12.0))
    data = music.midi_bytes(music.midi_events(piece, arr))
    score = converter.parse(data, format="midi")
    notes = score.flatten().notes
    starts = sorted({float(n.offset) for n in notes})
    assert starts == [float(q) for q in range(8)]           # span start is tick 0
    beats, downs = music.beat_grid_ql(piece, 4.0, 12.0)
    assert list(beats) == [float(q) for q in range(4, 12)] and list(downs) == [4.0, 8.0]
