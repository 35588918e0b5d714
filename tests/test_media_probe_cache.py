"""A video's probe kept in the cache (diffv2m.media_probe_cache): the same answer as probing,
a changed or damaged entry probed again, a bad file's one line every time, and a new take of
a cached video that never loads PyAV."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction

import pytest

from diffv2m import media, media_probe_cache
from diffv2m.errors import UserError
from mediagen import make_video

from embedded_models import needs_score_model


@pytest.fixture()
def clip(tmp_path):
    return make_video(tmp_path / "clip.mp4", seconds=2, fps=Fraction(24000, 1001), size=(96, 64),
                      with_audio=True, sar=Fraction(4, 3)).path


def _count_probes(monkeypatch):
    calls = []
    real = media.probe
    monkeypatch.setattr(media, "probe", lambda p: calls.append(p) or real(p))
    return calls


def test_cached_probe_is_the_probe(clip, tmp_path, monkeypatch):
    direct = media.probe(clip)
    calls = _count_probes(monkeypatch)
    cache = tmp_path / "cache"
    assert media_probe_cache.lookup(clip, None) is None
    assert media_probe_cache.lookup(clip, cache) is None and not cache.exists()   # reads only
    first = media_probe_cache.probe(clip, cache)
    again = media_probe_cache.probe(clip, cache)
    assert len(calls) == 1                                   # the second came from the cache
    assert media_probe_cache.lookup(clip, cache) == direct
    assert first == direct and again == direct               # Fractions, audio streams, path
    assert isinstance(again.frame_rate, Fraction) and again.sample_aspect_ratio == Fraction(4, 3)
    assert [p.suffix for p in (cache / "probe").iterdir()] == [".json"]


def test_a_changed_file_or_a_damaged_entry_is_probed_again(clip, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    media_probe_cache.probe(clip, cache)
    calls = _count_probes(monkeypatch)
    st = clip.stat()
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))     # touched: another identity
    assert media_probe_cache.probe(clip, cache) == media.probe(clip)
    assert len(calls) == 2
    entry = media_probe_cache.entry_path(cache, media_probe_cache.identity(clip))
    entry.write_text("{not json")
    assert media_probe_cache.probe(clip, cache).duration == pytest.approx(2.0, abs=0.05)
    assert json.loads(entry.read_text())["identity"]["size"] == clip.stat().st_size  # replaced
    assert len(calls) == 3                                   # the touch, the check, the damage


def test_a_bad_file_says_so_every_time_and_is_not_cached(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    cache = tmp_path / "cache"
    for _ in range(2):
        with pytest.raises(UserError) as exc:
            media_probe_cache.probe(junk, cache)
        assert str(exc.value).startswith(f"{junk}: ") and "\n" not in str(exc.value)
    with pytest.raises(UserError, match="no such file"):
        media_probe_cache.probe(tmp_path / "missing.mp4", cache)
    assert not (cache / "probe").exists() or not any((cache / "probe").iterdir())


def test_an_unusable_cache_still_answers(clip, tmp_path, capsys, monkeypatch):
    from diffv2m import cache as cache_mod
    monkeypatch.setattr(cache_mod, "_cache_warned", [])
    blocked = tmp_path / "a-file"                  # a file where the cache folder should be
    blocked.write_text("x")
    assert media_probe_cache.probe(clip, blocked) == media.probe(clip)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "continuing without the cache" in err[0]


@needs_score_model
def test_a_new_take_of_a_cached_video_never_loads_pyav(tmp_path):
    """The first take probes and decodes the video; a new seed reads the probe, the features
    and the conditions from the cache and writes its WAV with soundfile: PyAV stays unloaded."""
    video = make_video(tmp_path / "v.mp4", seconds=3, fps=Fraction(24), size=(96, 64),
                       cut_times=(1.5,)).path
    env = {**os.environ, "DIFFV2M_CACHE": str(tmp_path / "cache")}
    code = ("import sys\n"
            "from diffv2m.cli import main\n"
            "rc = main(['generate', %r, '-o', sys.argv[1], '--seed', sys.argv[2], '--steps', '2',"
            " '-q'])\n"
            "print('pyav loaded' if 'av._core' in sys.modules else 'no pyav', rc)\n") % str(video)
    runs = [subprocess.run([sys.executable, "-c", code, str(tmp_path / f"take-{s}.wav"), str(s)],
                           capture_output=True, text=True, timeout=300, env=env) for s in (1, 2)]
    assert [r.stdout.split("\n")[-2] for r in runs] == ["pyav loaded 0", "no pyav 0"], \
        [r.stderr[-1500:] for r in runs]
    meta = media.read_audio_metadata(tmp_path / "take-2.wav")
    assert meta["seed"] == 2
    assert media.probe(tmp_path / "take-2.wav").audio_streams[0].sample_rate == 48000
