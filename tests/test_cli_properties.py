"""Property and fuzz tests over the command line (issue 12), with Hypothesis.

For every drawn combination of options (``generate`` and ``score``) and every drawn damage to
a timeline file (truncated, garbled, spliced JSON and FCP 7 XML):

* the command exits 0 with valid outputs (exactly the files it names), or exits 2 with one
  error line and nothing new on disk;
* every input file of the job (video, timeline, each media file the timeline references,
  pre-existing files an output path points at) is byte-identical afterwards; in particular no
  command, in any drawn combination, writes onto a file that is an input of its job.

Examples are few (derandomised, so CI draws the same ones) and valid generations are cheap:
1 s of video, 1-2 sampler steps, so the whole module runs in well under a minute.
"""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import opentimelineio as otio
import pytest

from diffv2m import assets, media
from faults import call_cli, error_lines, snapshot
from mediagen import make_tone, make_video

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange

pytestmark = pytest.mark.skipif(not (assets.default_onnx_dir() / "manifest.json").exists(),
                                reason="the embedded default model's ONNX graphs are not built")

FEW = settings(max_examples=16, deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A job folder: a 1 s video, a timeline over it (video + audio clip, whose audio file is
    named like the take the scorer would write), a symlink, a folder and a file."""
    root = tmp_path_factory.mktemp("world")
    job = root / "job"
    (job / "media").mkdir(parents=True)
    make_video(job / "media" / "A.mp4", seconds=1.0, size=(64, 48), cut_times=(0.5,))
    make_tone(job / "media" / "cut.take-0.wav", seconds=1.0)
    rate, n = 24.0, 24

    def clip(name, url):
        ref = otio.schema.ExternalReference(target_url=url,
                                            available_range=TR(RT(0, rate), RT(n, rate)))
        return otio.schema.Clip(name=name, media_reference=ref,
                                source_range=TR(RT(0, rate), RT(n, rate)))

    tl = otio.schema.Timeline(name="cut", tracks=[
        otio.schema.Track(name="V1", children=[clip("A", "media/A.mp4")]),
        otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio,
                          children=[clip("tone", "media/cut.take-0.wav")])])
    otio.adapters.write_to_file(tl, str(job / "cut.otio"))
    otio.adapters.write_to_file(tl, str(job / "cut.xml"), adapter_name="fcp_xml")
    os.symlink(job / "media" / "A.mp4", job / "alias.mp4")
    (job / "folder.wav").mkdir()
    (job / "notes.txt").write_text("not a folder")
    (job / "out").mkdir()
    old_cache = os.environ.get("DIFFV2M_CACHE")
    os.environ["DIFFV2M_CACHE"] = str(root / "cache")
    BASELINE[job] = snapshot(job)
    yield job
    if old_cache is None:
        os.environ.pop("DIFFV2M_CACHE", None)
    else:
        os.environ["DIFFV2M_CACHE"] = old_cache


BASELINE: dict[Path, dict] = {}


def _fresh(job: Path) -> dict:
    """The job folder as the fixture made it (an earlier failing example may have left files)."""
    _reset(job, BASELINE[job])
    return snapshot(job)


def _reset(job: Path, before: dict) -> None:
    """Remove what a successful run wrote (outputs only: inputs are checked unchanged)."""
    for p in sorted(job.rglob("*"), key=lambda p: -len(p.parts)):
        rel = str(p.relative_to(job))
        if rel not in before:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def _check(job: Path, before: dict, rc: int, err: str, outputs: list[Path],
           valid=None) -> None:
    assert rc in (0, 2), err
    assert "Traceback" not in err, err
    COUNTS[rc] = COUNTS.get(rc, 0) + 1
    after = snapshot(job)
    for rel, digest in before.items():          # every input (and every other file) intact
        assert after.get(rel) == digest, f"{rel} changed (rc {rc}): {err}"
    if rc == 2:
        assert len(error_lines(err)) == 1, err
        assert after == before, f"left behind: {set(after) - set(before)}"
        return
    new = {rel for rel in after if rel not in before and after[rel] != "dir"}
    assert new == {str(p.relative_to(job)) for p in outputs}, (new, outputs)
    if valid is not None:
        valid()
    _reset(job, before)


OUTPUT_NAMES = ["fresh", "fresh_flac", "new_folder"]
OUTPUTS = {   # name -> path relative to the job folder ("" = the command's default)
    "fresh": "out/m.wav", "fresh_flac": "out/m.flac", "video": "media/A.mp4",
    "symlink_to_video": "alias.mp4", "folder": "folder.wav", "under_a_file": "notes.txt/m.wav",
    "bad_suffix": "out/m.mp3", "new_folder": "out/new/m.wav", "timeline_media": "media/cut.take-0.wav",
}
MIDIS = {"none": None, "fresh": "out/m.mid", "video": "media/A.mp4", "bad_suffix": "out/m.txt",
         "timeline_media": "media/cut.take-0.wav", "folder": "folder.wav"}
STEMS = {"none": None, "fresh": "out/stems", "inputs_folder": "media", "a_file": "notes.txt"}
MUXES = {"none": None, "fresh": "out/p.mp4", "video": "media/A.mp4", "alias": "alias.mp4",
         "same_as_output": "SAME", "bad_suffix": "out/p.avi", "timeline": "cut.otio"}

def mostly(valid, invalid):
    """``valid`` about three times in four: combinations of several faults still occur, and
    enough fully valid ones to check the outputs of a real run."""
    return st.one_of(valid, valid, valid, invalid)


seeds = mostly(st.integers(0, 3), st.one_of(st.integers(-2**40, 2**40),
                                            st.sampled_from([2**31 - 1, 2**31, -1])))
steps = mostly(st.integers(1, 2), st.sampled_from([0, -3, 1001, 100000]))
cfgs = mostly(st.sampled_from([0.0, 3.0, 15.0]), st.floats(allow_nan=True, allow_infinity=True))
samplers = mostly(st.sampled_from(["dpmpp-2m", "euler", "ddim"]), st.just("bogus"))
styles = mostly(st.sampled_from(["0", "1", "2"]), st.sampled_from(["3", "-1", "x"]))
times = mostly(st.sampled_from([None, None, 0.0, 0.25]),
               st.sampled_from([0.5, 1.0, 5.0, -1.0, math.nan, math.inf]))
COUNTS: dict[int, int] = {}


def _counted(prop, *args) -> None:
    """Run the property and require that both outcomes were drawn (a test that could never
    see a success, or never a refusal, would prove nothing)."""
    COUNTS.clear()
    prop(*args)
    print("outcomes", COUNTS)
    assert COUNTS.get(0, 0) >= 1 and COUNTS.get(2, 0) >= 1, COUNTS


@FEW
@given(seed=seeds, n_steps=steps, cfg=cfgs, sampler=samplers, style=styles, start=times,
       end=times, output=mostly(st.sampled_from(OUTPUT_NAMES), st.sampled_from(sorted(OUTPUTS))),
       mux=mostly(st.sampled_from(["none", "fresh"]), st.sampled_from(sorted(MUXES))),
       midi=mostly(st.sampled_from(["none", "fresh"]), st.sampled_from(sorted(MIDIS))),
       stems=mostly(st.sampled_from(["none", "none", "fresh"]), st.sampled_from(sorted(STEMS))),
       input_name=st.sampled_from(["media/A.mp4", "alias.mp4"]))
def generate_property(world, seed, n_steps, cfg, sampler, style, start, end, output,
                              mux, midi, stems, input_name):
    job = world
    before = _fresh(job)
    out = job / OUTPUTS[output]
    args = ["generate", job / input_name, "-o", out, f"--seed={seed}", f"--steps={n_steps}",
            f"--cfg={cfg}", "--sampler", sampler, f"--style={style}", "-q"]
    if start is not None:
        args.append(f"--start={start}")
    if end is not None:
        args.append(f"--end={end}")
    mux_path = MUXES[mux]
    if mux_path is not None:
        mux_path = out if mux_path == "SAME" else job / mux_path
        args += ["--mux", mux_path]
    midi_path = job / MIDIS[midi] if MIDIS[midi] else None
    stems_dir = job / STEMS[stems] if STEMS[stems] else None
    if midi_path is not None:
        args += ["--midi", midi_path]
    if stems_dir is not None:
        args += ["--stems", stems_dir]
    rc, _, err = call_cli(*args)
    if output in ("video", "symlink_to_video", "timeline_media") or mux in (
            "video", "alias", "same_as_output", "timeline") or midi in (
            "video", "timeline_media") or stems == "inputs_folder":
        assert rc == 2, f"wrote onto an input of the job: {args}"
    outputs = [out] + ([Path(mux_path)] if mux_path is not None else [])
    outputs += [midi_path] if midi_path is not None else []
    if stems_dir is not None:
        from diffv2m.score.files import stem_paths
        outputs += list(stem_paths(stems_dir).values())

    def valid():
        _valid_take(out, seed)
        if mux_path is not None:
            assert media.probe(mux_path).has_video and media.probe(mux_path).audio_streams

    _check(job, before, rc, err, outputs, valid)


def test_generate_any_options(world):
    _counted(generate_property, world)


def _valid_take(path: Path, seed: int) -> None:
    meta = media.read_audio_metadata(path)
    assert meta["seed"] == seed
    assert media.probe(path).duration > 0.2


TIMELINE_OUTS = {"fresh": "out/s.otio", "fresh_xml": "out/s.xml", "timeline": "cut.otio",
                 "media": "media/A.mp4", "edl": "out/s.edl", "unknown": "out/s.xyz",
                 "folder": "folder.wav", "alias_of_video": "alias.mp4"}
RANGES = st.sampled_from([None, "0-24", "0s-1s", "0s-100s", "5-3", "1:2:3", "x-y", "0-0"])


@FEW
@given(seed=seeds, n_steps=steps, cfg=cfgs, takes=mostly(st.sampled_from([1, 2]),
                                                         st.sampled_from([0, 17])),
       rng=mostly(st.sampled_from([None, "0-24", "0s-1s", "0-12"]), RANGES),
       output=mostly(st.sampled_from(["fresh", "fresh_xml"]), st.sampled_from(sorted(TIMELINE_OUTS))),
       mux=mostly(st.sampled_from(["none", "fresh"]), st.sampled_from(["video", "timeline"])),
       take_dir=mostly(st.sampled_from([None, "out"]), st.sampled_from(["media", "notes.txt"])),
       source=st.sampled_from(["cut.otio", "cut.xml", "media/A.mp4"]))
def score_property(world, seed, n_steps, cfg, takes, rng, output, mux, take_dir, source):
    job = world
    before = _fresh(job)
    out = job / TIMELINE_OUTS[output]
    args = ["score", job / source, "-o", out, f"--seed={seed}", f"--steps={n_steps}",
            f"--cfg={cfg}", f"--takes={takes}", "-q"]
    if rng is not None:
        args.append(f"--range={rng}")
    mux_path = {"none": None, "fresh": job / "out" / "p.mp4", "video": job / "media" / "A.mp4",
                "timeline": job / "cut.otio"}[mux]
    if mux_path is not None:
        args += ["--mux", mux_path]
    if take_dir is not None:
        args += ["--take-dir", job / take_dir]
    rc, _, err = call_cli(*args)
    stem = Path(source).stem
    take_folder = job / take_dir if take_dir else out.parent
    takes_written = [take_folder / f"{stem}.take-{seed + k}.wav" for k in range(max(takes, 0))]
    inputs = {job / source, job / "media" / "A.mp4", job / "alias.mp4", job / "cut.otio"}
    if source != "media/A.mp4":
        inputs.add(job / "media" / "cut.take-0.wav")
    if out in inputs or mux_path in inputs or any(t in inputs for t in takes_written):
        assert rc == 2, f"wrote onto an input of the job: {args}"

    def valid():
        tl = otio.adapters.read_from_file(str(out))
        assert any(t.name.startswith("Diff-V2M score") for t in tl.tracks)
        for k, take in enumerate(takes_written):
            _valid_take(take, seed + k)

    _check(job, before, rc, err, [out, *takes_written] + ([mux_path] if mux_path else []),
           valid)


def test_score_any_options(world):
    _counted(score_property, world)


# ----------------------------------------------------------------------------- fuzzed timelines

def _mutations(data: bytes):
    n = len(data)
    cut = st.integers(0, n - 1).map(lambda k: data[:k])
    flips = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), min_size=1,
                     max_size=6).map(lambda fl: _flip(data, fl))
    splice = st.tuples(st.integers(0, n), st.integers(0, 64),
                       st.binary(min_size=0, max_size=24)).map(
        lambda t: data[:t[0]] + t[2] + data[t[0] + t[1]:])
    garbage_text = st.sampled_from([b"", b"{", b"<?xml", b"null", b"[]", b"\xff\xfe\x00",
                                    b'{"OTIO_SCHEMA": "Timeline.1"}', b"<xmeml version='4'/>"])
    # Small edits that often keep the file well-formed: a character of a name, or a digit of
    # a number (durations, rates, frame counts), changed in place.
    import re
    inside = [i for m in re.finditer(rb'"name": "([^"]+)"|<name>([^<]+)</name>', data)
              for g in (1, 2) if m.group(g) for i in range(m.start(g), m.end(g))]
    digits = [i for i, c in enumerate(data) if chr(c).isdigit()]
    retouch = st.tuples(st.sampled_from(inside + digits),
                        st.sampled_from(b"az09A5")).map(lambda t: _flip(data, [t]))
    return st.one_of(retouch, cut, flips, splice, garbage_text)


def _flip(data: bytes, flips) -> bytes:
    b = bytearray(data)
    for pos, value in flips:
        b[pos] = value
    return bytes(b)


def _fuzz(job: Path, name: str, damaged: bytes) -> None:
    src = job / f"fuzz{Path(name).suffix}"
    _fresh(job)
    src.write_bytes(damaged)
    before = snapshot(job)
    out = job / "out" / "fuzzed.otio"
    rc, _, err = call_cli("score", src, "--range=0-24", "-o", out, "--steps=1", "-q")
    assert src.read_bytes() == damaged
    outputs = [out, out.parent / "fuzz.take-0.wav"]

    def valid():
        tl = otio.adapters.read_from_file(str(out))
        assert any(t.name.startswith("Diff-V2M score") for t in tl.tracks), err
        _valid_take(outputs[1], 0)

    _check(job, before, rc, err, outputs, valid)
    src.unlink()


@FEW
@given(data=st.data())
def damaged_timeline_property(world, name, data):
    _fuzz(world, name, data.draw(_mutations((world / name).read_bytes())))


@pytest.mark.parametrize("name", ["cut.otio", "cut.xml"])
def test_score_on_a_damaged_timeline_file(world, name):
    COUNTS.clear()
    damaged_timeline_property(world, name)
    print("outcomes", COUNTS)
    assert COUNTS.get(2, 0) >= 1, COUNTS
