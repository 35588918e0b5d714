"""The offline paired (video, music) corpus builder: deterministic by seed, resumable.

Two phases:

1. Plan (cheap): walk the seed-ordered list of music21 pieces (:func:`music.candidate_pieces`);
   for each, parse it, pick a tempo, up to ``MAX_CLIPS_PER_PIECE`` consecutive clips that
   start on downbeats, the instrumentation, and each clip's beats, onsets, cuts and grade.
   A piece's plan depends only on (seed, its position in the order), never on the number of
   workers, so the manifest is the same whatever ``workers`` is.
2. Render: each piece with a missing clip is rendered once with FluidSynth and cut into its
   clips; each clip's MP4, WAV and a sidecar ``clips/ID.json`` (written last) go through
   atomic renames.  Every clip's score (its exact notes, ``clips/ID.roll.npz``,
   :mod:`diffv2m.data.scores`) is written from the plan, without rendering.  A clip is complete when its sidecar equals its planned record and both
   media files exist; complete clips are skipped, so an interrupted build resumes.
"""
from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..errors import UserError
from ..progress import Progress
from . import footage, music
from .manifest import dumps, split_of, write_manifest

MAX_CLIPS_PER_PIECE = 4
SETTINGS_FILE = "corpus.json"
BUILDER_VERSION = 1



@dataclass(frozen=True)
class CorpusSettings:
    """What a corpus is built with (``DIR/corpus.json``): the seed and the clips' format,
    ``size`` the frame (width, height) as ``corpus build --size`` gives it."""
    seed: int
    clip_seconds: float = 10.0
    sample_rate: int = 24000
    fps: float = 24.0
    size: tuple[int, int] = (128, 72)

    def to_dict(self) -> dict:
        """The ``corpus.json`` form (the size as ``width`` and ``height``)."""
        return {"version": BUILDER_VERSION, "seed": self.seed, "clip_seconds": self.clip_seconds,
                "sample_rate": self.sample_rate, "fps": self.fps, "width": self.size[0],
                "height": self.size[1]}

    @classmethod
    def from_dict(cls, d: dict) -> "CorpusSettings":
        """Read back what :meth:`to_dict` wrote (``KeyError``/``ValueError`` when it is not)."""
        return cls(seed=int(d["seed"]), clip_seconds=float(d["clip_seconds"]),
                   sample_rate=int(d["sample_rate"]), fps=float(d["fps"]),
                   size=(int(d["width"]), int(d["height"])))


@dataclass
class PiecePlan:
    index: int                          # position in the seed's piece order
    piece: music.Piece
    arrangement: music.Arrangement
    records: list[dict]                 # one planned manifest record per clip
    accents: list[np.ndarray] = field(default_factory=list)
    shots: list[list[footage.Shot]] = field(default_factory=list)


@dataclass
class BuildReport:
    records: list[dict]
    rendered: list[str]                 # ids rendered by this run (the rest were complete)
    seconds: float


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def _r(ts) -> list[float]:
    return [round(float(t), 6) for t in ts]


# ----------------------------------------------------------------------------- planning
def plan_piece(settings: CorpusSettings, index: int, name: str) -> PiecePlan | None:
    """Everything about one piece's clips except the media; ``None`` if the piece is unusable."""
    try:
        piece = music.load_piece(name)
    except Exception:                   # unparsable or too small: skip it, deterministically
        return None
    rng = _rng(settings.seed, index)
    us = music.choose_tempo(piece, rng)
    spq = us / 1e6
    clip_ql = settings.clip_seconds / spq
    _, downs = music.beat_grid_ql(piece, piece.first_downbeat_ql, piece.length_ql)
    starts: list[float] = []
    for d in downs:
        if d + clip_ql > piece.length_ql + 1e-9:
            break
        if not starts or d >= starts[-1] + clip_ql - 1e-9:
            starts.append(float(d))
    if not starts:
        return None
    if len(starts) > MAX_CLIPS_PER_PIECE:
        j = int(rng.integers(0, len(starts) - MAX_CLIPS_PER_PIECE + 1))
        starts = starts[j:j + MAX_CLIPS_PER_PIECE]
    span = (starts[0], starts[-1] + clip_ql)
    arr = music.arrange(piece, rng, span, us)
    plan = PiecePlan(index=index, piece=piece, arrangement=arr, records=[])
    sr, fps = settings.sample_rate, settings.fps
    n_frames = int(round(settings.clip_seconds * fps))
    for k, q0 in enumerate(starts):
        crng = _rng(settings.seed, index, k + 1)
        clip_seed = int(np.random.SeedSequence([settings.seed, index, k + 1]).generate_state(1)[0])
        start_s = round((q0 - span[0]) * spq * sr) / sr          # sample-exact clip start
        beats_q, downs_q = music.beat_grid_ql(piece, q0, q0 + clip_ql)
        beats = (beats_q - span[0]) * spq - start_s
        downbeats = (downs_q - span[0]) * spq - start_s
        on_q, counts = music.onsets_ql(piece, q0, q0 + clip_ql)
        onsets = (on_q - span[0]) * spq - start_s
        keep = (beats >= 0) & (beats < settings.clip_seconds)
        beats = beats[keep]
        downbeats = downbeats[(downbeats >= 0) & (downbeats < settings.clip_seconds)]
        okeep = (onsets >= 0) & (onsets < settings.clip_seconds)
        onsets, counts = onsets[okeep], counts[okeep]
        energy = music.energy_of(arr.tempo, len(onsets) / settings.clip_seconds)
        shots, shot_beats = footage.plan_shots(beats, downbeats, n_frames, fps, crng)
        cuts = np.array([s.start / fps for s in shots[1:]])
        accents = footage.pick_accents(onsets, counts, cuts, fps)
        grade = footage.grade_params(piece.mode, energy)
        cid = f"{index:05d}-{k}"
        plan.records.append({
            "id": cid, "video": f"clips/{cid}.mp4", "audio": f"clips/{cid}.wav",
            "duration": float(settings.clip_seconds), "sample_rate": sr, "fps": float(fps),
            "width": settings.size[0], "height": settings.size[1],
            "split": split_of(name), "cls": music.class_of(energy), "energy": round(energy, 4),
            "tempo": round(arr.tempo, 3), "mode": piece.mode,
            "beat_times": _r(beats), "downbeat_times": _r(downbeats),
            "cut_times": _r(cuts), "onset_times": _r(onsets), "accent_times": _r(accents),
            "piece": name, "start": round(start_s, 6), "seed": clip_seed,
            "ensemble": arr.ensemble, "drums": arr.drums, "grade": grade,
            "shot_beats": shot_beats, "scenes": [s.scene for s in shots],
        })
        plan.shots.append(shots)
        plan.accents.append(accents)
    return plan


# ----------------------------------------------------------------------------- rendering
def _sidecar(out_dir: Path, rec: dict) -> Path:
    return out_dir / "clips" / f"{rec['id']}.json"


def clip_complete(out_dir: Path, rec: dict) -> bool:
    """True when the clip's sidecar matches ``rec`` and both media files exist."""
    side = _sidecar(out_dir, rec)
    if not (side.is_file() and (out_dir / rec["video"]).is_file()
            and (out_dir / rec["audio"]).is_file()):
        return False
    try:
        return side.read_text() == dumps(rec)
    except OSError:
        return False


def render_piece(settings: CorpusSettings, plan: PiecePlan, out_dir: Path) -> list[str]:
    """Render the piece once and write its incomplete clips; returns the ids written."""
    from .render import write_mp4, write_wav
    todo = [k for k, rec in enumerate(plan.records) if not clip_complete(out_dir, rec)]
    if not todo:
        return []
    arr, piece = plan.arrangement, plan.piece
    sr = settings.sample_rate
    seconds = (arr.span_ql[1] - arr.span_ql[0]) * arr.sec_per_ql + 0.5
    audio = music.render_midi(music.midi_bytes(music.midi_events(piece, arr)), sr, seconds)
    peak = float(np.max(np.abs(audio))) or 1.0
    audio = audio * np.float32(0.89 / peak)
    n = int(round(settings.clip_seconds * sr))
    n_frames = int(round(settings.clip_seconds * settings.fps))
    fade = np.linspace(1.0, 0.0, int(0.01 * sr), dtype=np.float32)
    written = []
    for k in todo:
        rec = plan.records[k]
        s0 = int(round(rec["start"] * sr))
        clip = np.zeros((1, n), np.float32)
        seg = audio[:, s0:s0 + n]
        clip[:, :seg.shape[1]] = seg
        clip[:, -len(fade):] *= fade
        frames = footage.render_footage(plan.shots[k], n_frames, settings.fps, *settings.size,
                                        rec["grade"], plan.accents[k])
        write_wav(out_dir / rec["audio"], clip, sr)
        write_mp4(out_dir / rec["video"], frames, settings.fps, clip, sr)
        atomic_write_text(_sidecar(out_dir, rec), dumps(rec))
        written.append(rec["id"])
    return written


def _plan_job(args) -> PiecePlan | None:
    return plan_piece(*args)


def _render_job(args) -> list[str]:
    return render_piece(*args)


# ----------------------------------------------------------------------------- build
def _check_settings(out_dir: Path, settings: CorpusSettings) -> None:
    path = out_dir / SETTINGS_FILE
    import json
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            raise UserError(f"{path}: unreadable corpus settings; remove it or use a new folder") from None
        if old != settings.to_dict():
            diff = ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in settings.to_dict().items()
                             if old.get(k) != v)
            raise UserError(f"{path}: corpus was built with other settings ({diff}); "
                            "use a new folder")
    else:
        atomic_write_text(path, json.dumps(settings.to_dict(), sort_keys=True, indent=1) + "\n")


def _sweep_partials(out_dir: Path) -> None:
    """Remove temporary files an interrupted run left (never a final-named file)."""
    for p in (out_dir / "clips").glob(".*.part*"):
        with contextlib.suppress(OSError):
            p.unlink()
    for p in out_dir.glob(".*.part*"):
        with contextlib.suppress(OSError):
            p.unlink()


def clips_needed(minutes: float, clip_seconds: float) -> int:
    return max(1, math.ceil(minutes * 60.0 / clip_seconds - 1e-9))


def build_corpus(out_dir: str | Path, *, minutes: float, seed: int, clip_seconds: float = 10.0,
                 sample_rate: int = 24000, fps: float = 24.0, size: tuple[int, int] = (128, 72),
                 workers: int = 1, progress: Progress | None = None) -> BuildReport:
    """Build (or resume) the corpus in ``out_dir``; returns the manifest records and what ran."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    if minutes <= 0:
        raise UserError(f"{out_dir}: --minutes must be positive, got {minutes}")
    if clip_seconds < 1:
        raise UserError(f"{out_dir}: --clip-seconds must be at least 1, got {clip_seconds}")
    if not 8000 <= sample_rate <= 96000:
        raise UserError(f"{out_dir}: --sample-rate must be within 8000..96000, got {sample_rate}")
    if not 1 <= fps <= 120:
        raise UserError(f"{out_dir}: --fps must be within 1..120, got {fps}")
    w, h = size
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise UserError(f"{out_dir}: --size must be even and at least 16x16, got {w}x{h}")
    if workers < 1:
        raise UserError(f"{out_dir}: --workers must be at least 1, got {workers}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a folder")
    music.check_tools()
    settings = CorpusSettings(seed=int(seed), clip_seconds=float(clip_seconds),
                              sample_rate=int(sample_rate), fps=float(fps), size=(int(w), int(h)))
    (out_dir / "clips").mkdir(parents=True, exist_ok=True)
    _check_settings(out_dir, settings)
    _sweep_partials(out_dir)
    need = clips_needed(minutes, clip_seconds)
    report = lambda stage, done, total: progress and progress(stage, done, total)  # noqa: E731

    names = music.candidate_pieces(settings.seed)
    pool = mp.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        plans: list[PiecePlan] = []
        have = 0
        jobs = ((settings, i, name) for i, name in enumerate(names))
        pending: deque = deque()
        report("plan", 0, need)
        while have < need:
            if pool is not None:
                while len(pending) < 2 * workers:
                    job = next(jobs, None)
                    if job is None:
                        break
                    pending.append(pool.apply_async(_plan_job, (job,)))
                if not pending:
                    break
                plan = pending.popleft().get()
            else:
                job = next(jobs, None)
                if job is None:
                    break
                plan = _plan_job(job)
            if plan is None:
                continue
            take = min(len(plan.records), need - have)
            plan.records, plan.shots, plan.accents = (plan.records[:take], plan.shots[:take],
                                                      plan.accents[:take])
            plans.append(plan)
            have += take
            report("plan", have, need)
        if have < need:
            raise UserError(f"{out_dir}: the score corpus only gives {have} clips of "
                            f"{clip_seconds:g} s; ask for fewer --minutes")
        records = [r for p in plans for r in p.records]
        rendered: list[str] = []
        complete = {r["id"] for r in records if clip_complete(out_dir, r)}
        report("render", len(complete), need)
        jobs2 = [(settings, p, out_dir) for p in plans
                 if not all(r["id"] in complete for r in p.records)]
        results = (pool.imap(_render_job, jobs2) if pool is not None
                   else map(_render_job, jobs2))
        last_write = time.monotonic()
        for ids in results:
            rendered += ids
            complete.update(ids)
            report("render", len(complete), need)
            if time.monotonic() - last_write > 30.0:      # a usable manifest while it runs
                write_manifest(out_dir / "manifest.jsonl",
                               [r for r in records if r["id"] in complete])
                last_write = time.monotonic()
        from .scores import write_plan_rolls
        for p in plans:                          # each clip's score sidecar (no rendering)
            write_plan_rolls(p, out_dir, settings.clip_seconds)
        write_manifest(out_dir / "manifest.jsonl", records)
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
    except BaseException:
        if pool is not None:
            pool.terminate()
            pool.join()
        _sweep_partials(out_dir)
        raise
    return BuildReport(records=records, rendered=rendered, seconds=time.perf_counter() - t0)
