"""diffv2m.evaluate: alignment, ODF accuracy, distribution metrics, embeddings and the CLI,
on inputs whose answers are known (click tracks, cut lists, Gaussians)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import linalg

import mediagen
from diffv2m.errors import UserError
from diffv2m.evaluate import alignment, distribution, embeddings, rhythm_metrics

SR = 22050
BPM = 120.0
PERIOD = 60.0 / BPM


# ----------------------------------------------------------------------------- alignment
def test_matching_is_one_to_one_and_within_tolerance():
    assert alignment.count_matches([0.0, 0.05], [0.02], tol=0.1) == 1
    assert alignment.count_matches([0.0, 1.0, 2.0], [0.09, 1.11, 1.95], tol=0.1) == 2
    # greedy must not steal: a=0.0 could take b=0.08, then a=0.15 still takes b=0.2
    assert alignment.count_matches([0.0, 0.15], [0.08, 0.2], tol=0.1) == 2
    assert alignment.count_matches([], [1.0]) == 0


def test_beat_scores_for_beats_on_a_cut_grid():
    beats = np.arange(0, 10, PERIOD)               # 20 music beats
    s = alignment.beat_scores(beats, beats + 0.03)  # visual beat on every music beat
    assert (s.bcs, s.bhs, s.f1, s.hits) == (1.0, 1.0, 1.0, 20)
    half = alignment.beat_scores(beats, beats[::2])  # a cut every other beat
    assert half.bhs == 1.0 and half.bcs == 0.5 and half.coverage_ratio == 2.0
    assert half.f1 == pytest.approx(2 / 3)
    off = alignment.beat_scores(beats, beats + PERIOD / 2)  # half a beat late
    assert off.hits == 0 and off.bcs == 0.0 and off.bhs == 0.0 and off.f1 == 0.0
    empty = alignment.beat_scores([], [1.0])
    assert empty.bcs == 0.0 and empty.bhs == 0.0 and empty.coverage_ratio == 0.0


def test_click_track_onsets_hit_cuts_at_the_same_tempo_and_miss_half_a_beat_off():
    from diffv2m.features import rhythm
    seconds = 8.0
    y = mediagen.make_click_track(None, bpm=BPM, seconds=seconds, sr=SR)[0]
    onsets = rhythm.onset_times(y, SR)
    cuts = np.arange(1.0, seconds, 2 * PERIOD)     # a cut every other beat
    on = alignment.random_shift_baseline(onsets, cuts, seconds, tol=0.1, n_shifts=400, seed=1)
    assert on.observed == 1.0
    # periodic onsets: a random shift lands within tol of the grid with probability 2*tol/P
    assert on.mean == pytest.approx(2 * 0.1 / PERIOD, abs=0.08)
    assert alignment.beat_scores(rhythm.beat_times(y, SR), cuts).bhs >= 0.9
    off = alignment.random_shift_baseline(onsets, cuts + PERIOD / 2, seconds, tol=0.1,
                                          n_shifts=400, seed=1)
    assert off.observed == 0.0 <= on.mean          # at or below the chance level
    assert off.p_value == 1.0 and off.z < 0


def test_shift_baseline_separates_aligned_from_random_irregular_onsets():
    rng = np.random.default_rng(3)
    duration = 30.0
    onsets = np.sort(rng.uniform(0, duration, 40))
    cuts = rng.choice(onsets, 10, replace=False) + 0.02
    aligned = alignment.random_shift_baseline(onsets, cuts, duration, n_shifts=300, seed=0)
    assert aligned.observed == 1.0
    assert aligned.p_value < 0.01 and aligned.z > 3
    assert aligned.mean == pytest.approx(40 * 0.2 / duration, abs=0.12)  # onset coverage
    chance = [alignment.random_shift_baseline(onsets, np.sort(rng.uniform(0, duration, 10)),
                                              duration, n_shifts=200, seed=s) for s in range(5)]
    assert all(abs(c.z) < 3.5 for c in chance)
    assert np.mean([c.p_value for c in chance]) > 0.1
    same = alignment.random_shift_baseline(onsets, cuts, duration, n_shifts=50, seed=7)
    assert same == alignment.random_shift_baseline(onsets, cuts, duration, n_shifts=50, seed=7)


def test_hit_rate_edge_cases():
    assert math.isnan(alignment.onset_cut_hit_rate([1.0], []))
    assert alignment.onset_cut_hit_rate([], [1.0]) == 0.0
    assert alignment.onset_cut_hit_rate([0.95, 3.0], [1.0, 2.0]) == 0.5
    with pytest.raises(ValueError):
        alignment.random_shift_baseline([1.0], [1.0], 0.0)


def test_visual_beats_merge_cuts_and_motion_peaks():
    t = np.arange(0, 4, 1 / 25)
    v = np.zeros_like(t)
    v[np.argmin(abs(t - 0.6))] = 1.0     # a motion peak away from cuts
    v[np.argmin(abs(t - 1.04))] = 0.9    # the motion spike a cut makes: dropped
    v[np.argmin(abs(t - 3.2))] = 0.05    # too small to count
    vb = alignment.visual_beats([1.0, 2.5], (t, v))
    np.testing.assert_allclose(vb, [0.6, 1.0, 2.5])
    np.testing.assert_allclose(alignment.visual_beats([2.0, 1.0]), [1.0, 2.0])


# ----------------------------------------------------------------------------- ODF accuracy
def test_odf_metrics_perfect_for_identical_curves_and_known_values():
    g = np.array([0.0, 2.0, 0.5, 4.0, 0.0, 1.0])
    m = rhythm_metrics.odf_metrics(g * 3, g)   # same after scaling to [0, 1]
    assert m["mae"] == 0.0 and m["rmse"] == 0.0
    assert m["pearson"] == pytest.approx(1.0) and m["peak_f1"] == 1.0
    p = np.array([1.0, 0.0, 0.0, 1.0])
    t = np.array([1.0, 0.0, 1.0, 0.0])
    m = rhythm_metrics.odf_metrics(p, t)
    assert m["mae"] == 0.5 and m["rmse"] == pytest.approx(math.sqrt(0.5))
    assert m["pearson"] == pytest.approx(0.0, abs=1e-12)
    assert (m["peak_precision"], m["peak_recall"], m["peak_f1"]) == (0.5, 0.5, 0.5)
    assert rhythm_metrics.odf_metrics(p, t, peak_tol=1)["peak_f1"] == 1.0
    assert math.isnan(rhythm_metrics.odf_metrics(np.ones(4), t)["pearson"])


def test_motion_baseline_is_scored_like_the_predictor():
    motion = np.array([0.0, 0.5, 1.0, 0.2])
    cuts = np.array([1, 0, 0, 0])
    base = rhythm_metrics.motion_baseline_odf(motion, cuts)
    np.testing.assert_allclose(base, [1.0, 0.5, 1.0, 0.2])
    res = rhythm_metrics.evaluate_rhythm(base, base, motion, cuts)
    assert res["motion_baseline"]["mae"] == 0.0 and res["predictor"]["mae"] == 0.0
    worse = rhythm_metrics.evaluate_rhythm(1 - base, base, motion, cuts)
    assert worse["predictor"]["mae"] > worse["motion_baseline"]["mae"]


# ----------------------------------------------------------------------------- distributions
def test_frechet_distance_known_answers():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6))
    assert distribution.frechet_distance(x, x) == 0.0
    delta = np.array([1.0, -2.0, 0.5, 0.0, 0.0, 3.0])
    assert distribution.frechet_distance(x, x + delta) == pytest.approx(delta @ delta, rel=1e-9)
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    fd = distribution.frechet_distance_from_stats(np.zeros(3), np.diag(a), np.zeros(3), np.diag(b))
    assert fd == pytest.approx(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))  # = 2
    # general SPD covariances: agrees with the textbook form using scipy.linalg.sqrtm
    m1, m2 = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(4), m2 @ m2.T + 0.1 * np.eye(4)
    mu1, mu2 = rng.standard_normal(4), rng.standard_normal(4)
    ref = (np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2)
           - 2 * np.trace(linalg.sqrtm(s1 @ s2)).real)
    assert distribution.frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-7)


def test_frechet_distance_rank_deficient_is_real_and_non_negative():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 40)), rng.standard_normal((5, 40)) + 0.5
    fd = distribution.frechet_distance(x, y)
    assert np.isfinite(fd) and fd > 0
    assert distribution.frechet_distance(x, x.copy()) == 0.0
    with pytest.raises(ValueError):
        distribution.frechet_distance(x, y[:, :3])


def test_density_coverage_identical_same_and_disjoint_sets():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((400, 8))
    same = distribution.density_coverage(real, real, k=5)
    assert same["coverage"] == 1.0
    assert same["density"] == pytest.approx(6 / 5)   # each ball holds itself + its 5 neighbours
    fresh = distribution.density_coverage(real, rng.standard_normal((400, 8)), k=5)
    assert 0.8 < fresh["density"] < 1.25 and fresh["coverage"] > 0.9
    far = distribution.density_coverage(real, rng.standard_normal((400, 8)) + 10.0, k=5)
    assert far["density"] == 0.0 and far["coverage"] == 0.0
    partial = distribution.density_coverage(real, real[real[:, 0] > 0], k=5)
    assert partial["coverage"] < 0.8
    with pytest.raises(ValueError):
        distribution.density_coverage(real[:5], real, k=5)


def test_kl_divergence_known_values():
    assert distribution.kl_divergence([1, 1], [2, 2]) == pytest.approx(0.0, abs=1e-12)
    expected = 0.5 * math.log(2) + 0.5 * math.log(2 / 3)
    assert distribution.kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert distribution.mean_pairwise_kl([[1, 1], [1, 0]], [[1, 1], [1, 0]]) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        distribution.kl_divergence([-1, 2], [1, 1])


# ----------------------------------------------------------------------------- embeddings
def test_builtin_embedding_shape_determinism_and_sensitivity():
    emb = embeddings.get_embedding()
    assert isinstance(emb, embeddings.AudioEmbedding)
    assert emb.name == "mel-chroma-onset-stats-v1" and emb.dim == 160
    slow = mediagen.make_click_track(None, bpm=90, seconds=4.0, sr=SR)
    fast = mediagen.make_click_track(None, bpm=180, seconds=4.0, sr=24000)
    e1, e2 = emb.embed(slow, SR), emb.embed(fast, 24000)
    assert e1.shape == (160,) and e1.dtype == np.float32 and np.all(np.isfinite(e1))
    np.testing.assert_array_equal(e1, emb.embed(slow, SR))
    assert e2[154] > 1.5 * e1[154]                  # onsets per second follow the tempo
    silent = emb.embed(np.zeros(100, np.float32), SR)
    assert np.all(np.isfinite(silent))
    both = embeddings.embed_many(emb, [slow, slow[0]], SR)
    assert both.shape == (2, 160)
    np.testing.assert_allclose(both[0], both[1])


def test_embedding_registry(tmp_path):
    with pytest.raises(UserError, match="register_embedding"):
        embeddings.get_embedding("vggish")
    with pytest.raises(UserError, match="not available"):
        embeddings.get_embedding("nope")

    class Const:
        name, dim = "test-const", 3

        def __init__(self, weights):
            self.scale = float(open(weights).read())

        def embed(self, audio, sr):
            return np.full(3, self.scale, np.float32)

    w = tmp_path / "w.txt"
    w.write_text("2.5")
    embeddings.register_embedding("test-const", lambda weights=None: Const(weights))
    try:
        e = embeddings.get_embedding("test-const", w)
        np.testing.assert_array_equal(e.embed(np.zeros(10), SR), [2.5, 2.5, 2.5])
        assert "test-const" in embeddings.available_embeddings()
        with pytest.raises(UserError, match="no such weights"):
            embeddings.get_embedding("test-const", tmp_path / "missing.bin")
        with pytest.raises(UserError, match="local file"):
            embeddings.get_embedding("test-const", "https://example.com/w.bin")
    finally:
        embeddings._REGISTRY.pop("test-const", None)


def test_metric_modules_import_without_torch():
    from torch_blocker import run_without_torch
    code = ("import diffv2m.evaluate.alignment, diffv2m.evaluate.distribution, "
            "diffv2m.evaluate.embeddings, diffv2m.evaluate.rhythm_metrics, "
            "diffv2m.evaluate.report, diffv2m.evaluate.cli\n")
    res = run_without_torch(code)
    assert res.returncode == 0, res.stderr[-2000:]


# ----------------------------------------------------------------------------- CLI
def _synthetic_set(root, n=3, seconds=4.0):
    """Videos cut on every other beat, reference click tracks, and two takes per clip:
    one on the beat (take-1) and one half a beat late (take-2)."""
    gen, ref, vid = root / "gen", root / "ref", root / "vid"
    for d in (gen, ref, vid):
        d.mkdir()
    cuts = (1.0, 2.0, 3.0)
    for i in range(n):
        name = f"clip{i}"
        mediagen.make_video(vid / f"{name}.mp4", seconds=seconds, fps=24, size=(64, 48),
                            cut_times=cuts)
        mediagen.make_click_track(ref / f"{name}.wav", bpm=BPM, seconds=seconds, sr=SR)
        on = mediagen.make_click_track(None, bpm=BPM, seconds=seconds, sr=SR)
        late = np.roll(on, int(PERIOD / 2 * SR), axis=1)
        mediagen.write_wav(gen / f"{name}.take-1.wav", on, SR)
        mediagen.write_wav(gen / f"{name}.take-2.wav", late, SR)
    np.save(gen / "clip0.take-1.odf.npy", np.array([1.0, 1.0, 1.0, 1.0], np.float32))
    return gen, ref, vid, cuts


def test_cli_end_to_end_writes_json_and_html(tmp_path):
    from diffv2m.evaluate import cli
    gen, ref, vid, cuts = _synthetic_set(tmp_path)
    out, page = tmp_path / "out" / "report.json", tmp_path / "out" / "report.html"
    rc = cli.main(["--generated", str(gen), "--reference", str(ref), "--videos", str(vid),
                   "-o", str(out), "--html", str(page), "--k", "2", "--shifts", "100",
                   "--recon", "-q"])
    assert rc == 0
    rep = json.loads(out.read_text())
    assert rep["embedding"]["name"] == "mel-chroma-onset-stats-v1"
    assert rep["embedding"]["comparable_with_paper"] is False
    assert "NOT VGGish, PANNs or CLAP" in rep["embedding"]["note"]
    clips = {(c["name"], c["take"]): c for c in rep["clips"]}
    assert len(clips) == 6
    for i in range(3):
        on, late = clips[(f"clip{i}", "1")], clips[(f"clip{i}", "2")]
        np.testing.assert_allclose(on["cut_times"], cuts, atol=0.05)
        assert on["alignment"]["onset_cut_hit_rate"]["observed"] == 1.0
        assert late["alignment"]["onset_cut_hit_rate"]["observed"] == 0.0
        assert late["alignment"]["onset_cut_hit_rate"]["observed"] <= \
            late["alignment"]["onset_cut_hit_rate"]["mean"]
        assert on["alignment"]["beats"]["bhs"] >= late["alignment"]["beats"]["bhs"]
        assert on["reference_alignment"]["onset_cut_hit_rate"]["observed"] == 1.0
        assert on["recon"]["si_sdr_db"] > 20 > late["recon"]["si_sdr_db"]
    r = clips[("clip0", "1")]["rhythm"]
    assert set(r) == {"predictor", "motion_baseline"} and r["predictor"]["seconds"] == 4
    s = rep["summary"]
    assert s["alignment"]["onset_cut_hit_rate"] == pytest.approx(0.5)
    assert s["reference_alignment"]["onset_cut_hit_rate"] == 1.0
    d = rep["distribution"]
    assert d["n_generated"] == 6 and d["n_reference"] == 3 and d["frechet_distance"] >= 0
    assert 0 <= d["density_coverage"]["coverage"] <= 1
    assert d["chroma_kl"]["n_pairs"] == 6
    text = page.read_text()
    assert text.count("data:image/png;base64,") >= 2 and "NOT VGGish" in text


def test_cli_with_manifest_and_user_errors(tmp_path):
    from diffv2m import cli as top
    from diffv2m.evaluate import cli
    gen, ref, vid, cuts = _synthetic_set(tmp_path, n=1)
    (gen / "clip0.take-2.wav").unlink()
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"id": "clip0", "video": "vid/clip0.mp4",
                                    "audio": "ref/clip0.wav", "cut_times": list(cuts)}) + "\n")
    out = tmp_path / "m.json"
    assert cli.main(["--generated", str(gen), "--manifest", str(manifest), "-o", str(out),
                     "--shifts", "20", "-q"]) == 0
    rep = json.loads(out.read_text())
    (c,) = rep["clips"]
    assert c["annotated_cuts"]["observed"] == 1.0 and c["reference"].endswith("clip0.wav")
    assert "skipped" in rep["distribution"]["density_coverage"]

    with pytest.raises(UserError, match="not a folder"):
        cli.main(["--generated", str(tmp_path / "nope"), "--videos", str(vid), "-o", str(out)])
    with pytest.raises(UserError, match="--videos"):
        cli.main(["--generated", str(gen), "-o", str(out)])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no generated"):
        cli.main(["--generated", str(empty), "--videos", str(vid), "-o", str(out)])
    with pytest.raises(UserError, match="not available"):
        cli.main(["--generated", str(gen), "--videos", str(vid), "-o", str(out),
                  "--embedding", "clap"])
    assert top.main(["evaluate", "--generated", str(empty), "--videos", str(vid),
                     "-o", str(out)]) == 2


def test_paired_test_over_clips_separates_aligned_from_chance():
    from diffv2m.evaluate.cli import paired_over_clips
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.5, 20)
    aligned = paired_over_clips(list(base + 0.3), list(base))
    assert aligned["clips_above_baseline"] == 20 and aligned["clips_paired"] == 20
    assert aligned["wilcoxon_p"] < 1e-4
    chance = paired_over_clips(list(base + rng.normal(0, 0.1, 20)), list(base))
    assert chance["wilcoxon_p"] > 0.01
    few = paired_over_clips([0.9, None, 0.8], [0.4, 0.5, None])
    assert few == {"clips_above_baseline": 1, "clips_paired": 1}     # too few for a p-value
