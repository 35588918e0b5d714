"""diffv2m.media against videos synthesised by tests/mediagen.py, whose frames carry their own
index as a pixel code, so every check is about *which* frame came back, not just how many."""
from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest
from scipy.signal import find_peaks

import mediagen
from diffv2m import media
from diffv2m.errors import UserError

NTSC_FILM = Fraction(24000, 1001)
NTSC = Fraction(30000, 1001)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Each kind of test video, written once for the module."""
    d = tmp_path_factory.mktemp("media")
    return {
        "h264_23976": mediagen.make_video(d / "h264_23976.mp4", seconds=3, fps=NTSC_FILM,
                                          codec="h264", cut_times=(1.25,)),
        "mpeg4_2997": mediagen.make_video(d / "mpeg4_2997.mp4", seconds=3, fps=NTSC,
                                          codec="mpeg4", cut_times=(1.0, 2.0)),
        "vfr": mediagen.make_video(d / "vfr.mp4", seconds=3, fps=24, vfr=True),
        "portrait90": mediagen.make_video(d / "portrait90.mp4", seconds=1, fps=24,
                                          size=(96, 160), rotation=90),
        "portrait270": mediagen.make_video(d / "portrait270.mp4", seconds=1, fps=24,
                                           size=(96, 160), rotation=270),
        "sar2": mediagen.make_video(d / "sar2.mp4", seconds=1, fps=24, size=(192, 96),
                                    sar=2),
        "with_audio": mediagen.make_video(d / "with_audio.mp4", seconds=3, fps=25,
                                          with_audio=True, bpm=60),
    }


def indices(frames) -> list[int]:
    return [mediagen.read_frame_index(f) for f in frames]


# ----------------------------------------------------------------------------- probe

@pytest.mark.parametrize("name,rate,codec", [("h264_23976", NTSC_FILM, "h264"),
                                             ("mpeg4_2997", NTSC, "mpeg4")])
def test_probe_cfr(videos, name, rate, codec):
    g = videos[name]
    info = media.probe(g.path)
    assert info.has_video and info.video_codec == codec
    assert info.frame_rate == rate and not info.vfr
    assert info.fps == pytest.approx(float(rate))
    assert info.duration == pytest.approx(g.duration, abs=1e-3)
    assert (info.width, info.height) == (160, 96)
    assert (info.display_width, info.display_height) == (160, 96)
    assert info.rotation == 0 and info.frames == g.n_frames
    assert info.audio_streams == []


def test_probe_vfr_and_audio(videos):
    info = media.probe(videos["vfr"].path)
    assert info.vfr
    assert not media.probe(videos["h264_23976"].path).vfr
    a = media.probe(videos["with_audio"].path).audio_streams
    assert len(a) == 1 and a[0].sample_rate == 48000 and a[0].channels == 2
    assert a[0].codec == "aac" and a[0].duration == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize("name", ["portrait90", "portrait270"])
def test_probe_rotation_gives_display_size(videos, name):
    g = videos[name]
    info = media.probe(g.path)
    assert info.rotation == g.rotation
    assert (info.width, info.height) == (160, 96)            # coded landscape
    assert (info.display_width, info.display_height) == (96, 160)


def test_probe_sample_aspect_ratio(videos):
    info = media.probe(videos["sar2"].path)
    assert info.sample_aspect_ratio == 2
    assert (info.width, info.display_width, info.display_height) == (96, 192, 96)


# ----------------------------------------------------------------------------- frames

@pytest.mark.parametrize("name", ["h264_23976", "mpeg4_2997", "vfr"])
def test_native_frames_all_present_in_order(videos, name):
    g = videos[name]
    times, frames = media.decode_frames(g.path)
    assert frames.dtype == np.uint8 and frames.shape == (g.n_frames, 96, 160, 3)
    assert indices(frames) == list(range(g.n_frames))
    np.testing.assert_allclose(times, g.frame_times, atol=1e-4)


@pytest.mark.parametrize("name", ["h264_23976", "mpeg4_2997", "vfr"])
@pytest.mark.parametrize("start", [0.0, 1.0, 1.51, 2.2])
def test_seek_is_frame_accurate(videos, name, start):
    g = videos[name]
    # Native: first frame is the first one at or after start.
    times, frames = media.decode_frames(g.path, start=start, end=start + 0.4)
    first = int(np.searchsorted(g.frame_times, start - 1e-4))
    expected = [i for i in range(first, g.n_frames) if g.frame_times[i] < start + 0.4 - 1e-4]
    assert indices(frames) == expected
    np.testing.assert_allclose(times, [g.frame_times[i] for i in expected], atol=1e-4)
    # Sampled: the frame showing at each sample time.
    times, frames = media.decode_frames(g.path, fps=7, start=start, end=start + 0.7)
    np.testing.assert_allclose(times, start + np.arange(5) / 7)
    assert indices(frames) == [g.index_at(t) for t in times]


def test_sampling_at_native_rate_returns_each_frame_once(videos):
    g = videos["mpeg4_2997"]
    times, frames = media.decode_frames(g.path, fps=NTSC, start=g.frame_times[17])
    assert indices(frames) == list(range(17, g.n_frames))


def test_sampling_faster_than_native_repeats_frames(videos):
    g = videos["h264_23976"]
    times, frames = media.decode_frames(g.path, fps=60, start=0.5, end=0.6)
    assert len(frames) == 6
    assert indices(frames) == [g.index_at(t) for t in times]
    assert len(set(indices(frames))) < 6


def test_one_fps_gives_ceil_duration_frames_and_shot_colours(videos):
    g = videos["mpeg4_2997"]                          # cuts at 1.0 and 2.0, 3.003 s long
    times, frames = media.decode_frames(g.path, fps=1, size=(32, 32))
    assert frames.shape == (4, 32, 32, 3)
    for t, f in zip(times, frames):
        shown = g.frame_times[g.index_at(t)]          # at 1.0 s frame 29 (0.968 s) shows
        colour = np.asarray(g.colours[g.shot_at(shown)], float)
        assert np.abs(mediagen.frame_colour(f) - colour).max() < 25


def test_resize_in_decoder(videos):
    g = videos["h264_23976"]
    times, frames = media.decode_frames(g.path, fps=2, start=1.0, end=2.0, size=(80, 48))
    assert frames.shape == (2, 48, 80, 3)
    assert indices(frames) == [g.index_at(t) for t in times]


@pytest.mark.parametrize("name", ["portrait90", "portrait270"])
def test_rotated_frames_come_out_upright(videos, name):
    g = videos[name]
    times, frames = media.decode_frames(g.path, fps=4)
    assert frames.shape == (4, 160, 96, 3)
    # The code strip is on top and decodes only if the picture is upright, not mirrored.
    assert indices(frames) == [g.index_at(t) for t in times]
    assert np.abs(mediagen.frame_colour(frames[0]) - g.colours[0]).max() < 25
    small = media.decode_frames(g.path, fps=4, size=(48, 80))[1]
    assert small.shape == (4, 80, 48, 3) and indices(small) == indices(frames)


def test_legacy_rotate_tag_is_honoured(tmp_path):
    # The old 'rotate' tag counts clockwise; FFmpeg 8 only keeps it in Matroska.
    g = mediagen.make_video(tmp_path / "tagged.mkv", seconds=0.5, fps=24, size=(96, 160),
                            rotate_tag=90)
    info = media.probe(g.path)
    assert info.rotation == 270 and (info.display_width, info.display_height) == (96, 160)
    times, frames = media.decode_frames(g.path, fps=8)
    assert frames.shape[1:] == (160, 96, 3)
    assert indices(frames) == [g.index_at(t) for t in times]


def test_non_square_pixels_are_restored(videos):
    g = videos["sar2"]
    times, frames = media.decode_frames(g.path, start=0.5, end=0.6)
    assert frames.shape[1:] == (96, 192, 3)
    assert indices(frames) == [g.index_at(t) for t in times]


def test_iter_frames_is_lazy(videos):
    g = videos["h264_23976"]
    it = media.iter_frames(g.path, fps=24)
    t, frame = next(it)
    assert t == 0.0 and mediagen.read_frame_index(frame) == 0
    it.close()


def test_file_frame_source(videos, tmp_path):
    g = videos["h264_23976"]
    src = media.FileFrameSource(g.path, start=1.0, end=2.5)
    assert src.duration == pytest.approx(1.5)
    got = list(src.frames(fps=2, size=(40, 24)))
    assert [round(t, 6) for t, _ in got] == [0.0, 0.5, 1.0]
    assert [mediagen.read_frame_index(f) for _, f in got] == \
        [g.index_at(1.0 + t) for t, _ in got]
    key = src.cache_key()
    assert key == media.FileFrameSource(g.path, start=1.0, end=2.5).cache_key()
    assert key != media.FileFrameSource(g.path, start=1.0, end=2.0).cache_key()
    st = os.stat(g.path)
    os.utime(g.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        assert key != media.FileFrameSource(g.path, start=1.0, end=2.5).cache_key()
    finally:
        os.utime(g.path, ns=(st.st_atime_ns, st.st_mtime_ns))


# ----------------------------------------------------------------------------- audio

@pytest.mark.parametrize("src_sr,dst_sr", [(48000, 22050), (44100, 16000), (22050, 44100)])
def test_read_audio_resamples_to_exact_length(tmp_path, src_sr, dst_sr):
    path = tmp_path / "tone.wav"
    mediagen.make_tone(path, seconds=1.0, sr=src_sr, channels=2)
    mono = media.read_audio(path, dst_sr)
    assert mono.shape == (1, dst_sr) and mono.dtype == np.float32
    stereo = media.read_audio(path, dst_sr, mono=False)
    assert stereo.shape == (2, dst_sr)
    # 440 Hz left, 880 Hz right, amplitude 0.5: RMS ~0.354 on each channel.
    rms = np.sqrt((stereo[:, 100:-100] ** 2).mean(axis=1))
    np.testing.assert_allclose(rms, 0.354, atol=0.02)
    part = media.read_audio(path, dst_sr, mono=False, start=0.25, end=0.75)
    assert part.shape == (2, dst_sr // 2)


def test_read_audio_range_keeps_click_times(tmp_path):
    path = tmp_path / "click.wav"
    mediagen.make_click_track(path, bpm=120, seconds=3.0, sr=44100)
    audio = media.read_audio(path, 22050, start=0.7, end=2.9)
    assert audio.shape == (1, round(2.2 * 22050))
    peaks, _ = find_peaks(np.abs(audio[0]), height=0.3, distance=2000)
    np.testing.assert_allclose(peaks / 22050 + 0.7, [1.0, 1.5, 2.0, 2.5], atol=2e-3)


def test_read_audio_from_video_file(videos):
    audio = media.read_audio(videos["with_audio"].path, 22050, start=0.5, end=2.5)
    assert audio.shape == (1, 44100)
    peaks, _ = find_peaks(np.abs(audio[0]), height=0.3, distance=5000)
    np.testing.assert_allclose(peaks / 22050 + 0.5, [1.0, 2.0], atol=3e-3)


@pytest.mark.parametrize("suffix,subtype,tol", [(".wav", "pcm16", 1e-4), (".wav", "float", 1e-7),
                                                (".flac", "pcm16", 1e-4)])
def test_write_audio_round_trip_with_metadata(tmp_path, suffix, subtype, tol):
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal((2, 8000))).clip(-1, 1).astype(np.float32)
    meta = {"model": "small", "seed": 1234, "steps": 8, "guidance": 3.0, "note": "é ✓"}
    path = media.write_audio(tmp_path / f"take{suffix}", audio, 16000, meta, subtype=subtype)
    assert media.read_audio_metadata(path) == meta
    back = media.read_audio(path, 16000, mono=False)
    assert back.shape == audio.shape
    assert np.abs(back - audio).max() < tol
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"take{suffix}"]


def test_write_audio_16_bit_samples_are_ffmpegs_conversion(tmp_path):
    """The takes' 16-bit samples are what FFmpeg's float -> s16 conversion gives (it wrote
    them before soundfile did): round(x * 32768), ties to even, held to the int16 range."""
    import av
    import soundfile
    rng = np.random.default_rng(3)
    audio = (0.5 * rng.standard_normal((2, 4000))).astype(np.float32)
    audio[0, :6] = [1.0, -1.0, 0.99999, 2.5 / 32768, 3.5 / 32768, -0.5 / 32768]   # ends, ties
    ours, _ = soundfile.read(media.write_audio(tmp_path / "a.wav", audio, 8000), dtype="int16")
    ref = tmp_path / "ffmpeg.wav"
    clipped = np.ascontiguousarray(np.clip(audio, -1, 1))
    with av.open(str(ref), "w", format="wav") as out:
        st = out.add_stream("pcm_s16le", rate=8000, layout="stereo")
        frame = av.AudioFrame.from_ndarray(clipped, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 8000, 0
        for packet in [*st.encode(frame), *st.encode()]:
            out.mux(packet)
    theirs, _ = soundfile.read(ref, dtype="int16")
    assert np.array_equal(ours, theirs)
    assert list(ours[:3, 0]) == [32767, -32768, 32767]


def test_write_audio_leaves_the_callers_samples_alone(tmp_path):
    """The conversion works in place on its own copy: a [C, N] view of an interleaved
    [N, C] array (which needs no copy to be interleaved), with NaN, infinities and samples
    past full scale, comes back unchanged, and gives the file the plain array gives."""
    import soundfile
    frames = (2.0 * np.random.default_rng(5).standard_normal((3000, 2))).astype(np.float32)
    frames[:3, 0] = [np.nan, np.inf, -np.inf]
    keep = frames.copy()
    for subtype in ("pcm16", "float"):
        a = media.write_audio(tmp_path / f"view-{subtype}.wav", frames.T, 8000, subtype=subtype)
        b = media.write_audio(tmp_path / f"copy-{subtype}.wav", np.ascontiguousarray(frames.T),
                              8000, subtype=subtype)
        assert np.array_equal(frames, keep, equal_nan=True)
        assert a.read_bytes() == b.read_bytes()
    back, _ = soundfile.read(tmp_path / "view-float.wav", dtype="float32")
    assert list(back[:3, 0]) == [0.0, 1.0, -1.0] and np.max(np.abs(back)) == 1.0


def test_write_audio_keeps_a_long_comment(tmp_path):
    meta = {f"graph_{i}": "0123456789abcdef" * 8 for i in range(200)}         # ~30 kB of JSON
    for suffix in (".wav", ".flac"):
        path = media.write_audio(tmp_path / f"long{suffix}", np.zeros((1, 800), np.float32),
                                 8000, meta)
        assert media.read_audio_metadata(path) == meta


def test_write_audio_without_metadata_and_clipping(tmp_path):
    path = media.write_audio(tmp_path / "a.wav", np.array([0.0, 2.0, -2.0, 0.5], np.float32), 8000)
    assert media.read_audio_metadata(path) == {}
    back = media.read_audio(path, 8000)
    np.testing.assert_allclose(back[0], [0.0, 1.0, -1.0, 0.5], atol=1e-4)


# ----------------------------------------------------------------------------- mux

def test_mux_preview_has_audio_and_video(videos, tmp_path):
    g = videos["h264_23976"]
    music = tmp_path / "music.flac"
    mediagen.make_click_track(None, bpm=90, seconds=2.0, sr=44100)
    media.write_audio(music, mediagen.make_click_track(None, bpm=90, seconds=2.0, sr=44100),
                      44100)
    out = tmp_path / "preview.mp4"
    calls = []
    media.mux(g.path, music, out, start=1.0, end=2.5,
              progress=lambda stage, done, total: calls.append((stage, done, total)))
    info = media.probe(out)
    assert info.has_video and info.video_codec == "h264" and info.frame_rate == NTSC_FILM
    assert info.duration == pytest.approx(1.5, abs=0.05)
    assert len(info.audio_streams) == 1 and info.audio_streams[0].codec == "aac"
    assert info.audio_streams[0].duration == pytest.approx(1.5, abs=0.1)
    times, frames = media.decode_frames(out)
    assert indices(frames)[:3] == [g.index_at(1.0 + t) for t in times[:3]]
    assert calls and calls[-1][1] == calls[-1][2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["music.flac", "preview.mp4"]


def test_mux_keeps_rotated_video_upright(videos, tmp_path):
    g = videos["portrait90"]
    music = tmp_path / "m.wav"
    mediagen.make_tone(music, seconds=1.0, sr=48000, channels=1)
    out = media.mux(g.path, music, tmp_path / "p.mp4")
    info = media.probe(out)
    assert (info.display_width, info.display_height) == (96, 160)
    frames = media.decode_frames(out, fps=4)[1]
    assert indices(frames) == [g.index_at(t) for t in np.arange(4) / 4]


# ----------------------------------------------------------------------------- bad input

def _bad_files(d, good):
    text = d / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    truncated = d / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    # Index first: the header survives the cut, so only the index betrays the missing data.
    fast = mediagen.make_video(d / "fast.mp4", seconds=1, fps=24, faststart=True).path
    cut = d / "truncated_faststart.mp4"
    cut.write_bytes(fast.read_bytes()[: fast.stat().st_size * 3 // 4])
    fast.unlink()
    return {"missing": d / "missing.mp4", "text": text, "empty": empty, "truncated": truncated,
            "truncated_faststart": cut,
            "no_frames": mediagen.make_empty_video(d / "no_frames.mp4")}


def _assert_user_error(exc_info, path):
    msg = str(exc_info.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg and len(msg) > len(str(path)) + 4


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "truncated",
                                  "truncated_faststart", "no_frames"])
def test_bad_files_raise_user_error(videos, tmp_path, kind):
    path = _bad_files(tmp_path, videos["h264_23976"].path)[kind]
    calls = [lambda: media.probe(path), lambda: media.decode_frames(path, fps=1),
             lambda: media.read_audio(path, 16000), lambda: media.FileFrameSource(path),
             lambda: media.read_audio_metadata(path)]
    for call in calls:
        with pytest.raises(UserError) as e:
            call()
        _assert_user_error(e, path)
    out = tmp_path / "out.mp4"
    music = tmp_path / "m.wav"
    mediagen.make_tone(music, seconds=0.5, sr=16000, channels=1)
    with pytest.raises(UserError) as e:
        media.mux(path, music, out)
    _assert_user_error(e, path)
    with pytest.raises(UserError) as e:
        media.mux(videos["h264_23976"].path, path, out)
    _assert_user_error(e, path)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.parametrize("start,end", [(-0.5, None), (3.5, None), (0.0, 9.0), (1.0, 1.0),
                                       (2.0, 1.0)])
def test_range_outside_file(videos, start, end):
    g = videos["h264_23976"]
    with pytest.raises(UserError) as e:
        media.decode_frames(g.path, fps=1, start=start, end=end)
    _assert_user_error(e, g.path)
    with pytest.raises(UserError) as e:
        media.FileFrameSource(g.path, start=start, end=end)
    _assert_user_error(e, g.path)


def test_no_video_or_no_audio_stream(videos, tmp_path):
    wav = tmp_path / "tone.wav"
    mediagen.make_tone(wav, seconds=0.5, sr=16000, channels=1)
    assert not media.probe(wav).has_video
    with pytest.raises(UserError) as e:
        media.decode_frames(wav, fps=1)
    _assert_user_error(e, wav)
    assert "no video stream" in str(e.value)
    silent = videos["h264_23976"].path
    with pytest.raises(UserError) as e:
        media.read_audio(silent, 16000)
    _assert_user_error(e, silent)
    assert "no audio stream" in str(e.value)
    with pytest.raises(UserError) as e:
        media.mux(silent, silent, tmp_path / "x.mp4")
    assert "no audio stream" in str(e.value)
    assert not (tmp_path / "x.mp4").exists()


def test_bad_output_paths_write_nothing(videos, tmp_path):
    with pytest.raises(UserError) as e:
        media.write_audio(tmp_path / "take.mp3", np.zeros((1, 100), np.float32), 16000)
    _assert_user_error(e, tmp_path / "take.mp3")
    g = videos["with_audio"].path
    with pytest.raises(UserError):
        media.mux(g, g, g)                       # would overwrite its own input
    with pytest.raises(UserError):
        media.mux(g, g, tmp_path / "preview.avi")
    assert list(tmp_path.iterdir()) == []
