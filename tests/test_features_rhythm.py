"""Rhythm features of audio on synthetic click tracks whose onsets are known exactly."""
import numpy as np
import pytest

from diffv2m.features import rhythm

SR = 24000


def click_track(sr=SR, bpm=120.0, seconds=8.0, first=0.25, active=None):
    """Decaying 1 kHz clicks every beat; ``active`` limits clicks to those whole seconds."""
    y = np.zeros(int(sr * seconds), np.float32)
    n = int(0.01 * sr)
    k = np.arange(n)
    click = (0.8 * np.exp(-k / (0.002 * sr)) * np.sin(2 * np.pi * 1000 * k / sr)).astype(np.float32)
    times = np.arange(first, seconds - 0.05, 60.0 / bpm)
    if active is not None:
        times = times[np.isin(np.floor(times).astype(int), list(active))]
    for t in times:
        i = int(round(t * sr))
        y[i:i + n] += click[: len(y) - i]
    return y, times


def test_odf_peaks_fall_in_the_seconds_that_have_clicks():
    active = (0, 2, 3, 6)
    y, _ = click_track(active=active)
    odf = rhythm.odf_lowres(y, SR)
    assert odf.shape == (8,) and odf.dtype == np.float32
    assert set(np.flatnonzero(odf > 1.0)) == set(active)
    assert np.all(odf[[1, 4, 5, 7]] == 0)
    norm = rhythm.odf_normalise(odf)
    assert norm.max() == pytest.approx(1.0) and norm.min() == 0.0


def test_odf_of_stereo_and_explicit_seconds():
    y, _ = click_track(seconds=4.0)
    stereo = np.stack([y, y])
    odf = rhythm.odf_lowres(stereo, SR, seconds=6)
    assert odf.shape == (6,)
    assert np.all(odf[:4] > 1.0) and np.all(odf[4:] == 0)
    assert np.all(rhythm.odf_lowres(np.zeros(SR * 2, np.float32), SR) == 0)


def test_beat_and_onset_times_match_the_clicks():
    y, clicks = click_track(bpm=120.0, seconds=8.0)
    beats = rhythm.beat_times(y, SR)
    assert len(beats) >= 12
    err = np.abs(beats[:, None] - clicks[None, :]).min(axis=1)
    assert err.max() < 0.030, err
    tempo_period = np.median(np.diff(beats))
    assert tempo_period == pytest.approx(0.5, abs=0.02)
    onsets = rhythm.onset_times(y, SR)
    assert len(onsets) == len(clicks)
    assert np.abs(onsets - clicks).max() < 0.030


def test_lowres_tempogram_and_mel_shapes():
    y, _ = click_track(seconds=5.0)
    tg = rhythm.tempogram_lowres(y, SR)
    mel = rhythm.mel_lowres(y, SR)
    assert tg.shape == (5, 16) and mel.shape == (5, 16)
    assert np.isfinite(tg).all() and np.isfinite(mel).all()
    # clicks are 1 kHz: the mel group holding 1 kHz is louder than the top group
    assert mel[1].argmax() < 12 and mel[1, -1] < mel[1].max()
    assert rhythm.mel_lowres(y, SR, seconds=7).shape == (7, 16)


def test_odf_normalise_edge_cases():
    assert np.all(rhythm.odf_normalise(np.zeros(4)) == 0)
    np.testing.assert_allclose(rhythm.odf_normalise([-1.0, 2.0, 4.0]), [0, 0.5, 1.0])
    with pytest.raises(ValueError):
        rhythm.to_mono(np.zeros((2, 2, 2)))
