"""The corpus manifest ``DIR/manifest.jsonl``: one JSON object per clip; read, write, validate.

Fields (docs/INTERFACES.md): id, video, audio (paths relative to DIR), duration, sample_rate,
fps, split (train|val|test), cls (0 calm .. 2 energetic), tempo (BPM), mode (major|minor),
beat_times, downbeat_times, cut_times, onset_times (seconds from the clip start), piece, seed;
plus energy, start (seconds into the rendered piece), ensemble, drums, grade, shot_beats.

Splits go by piece (a hash of its corpus path), so test pieces are never heard in training,
and a piece keeps its split when the corpus grows or the seed changes: about 80/10/10.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterator

from ..atomic import atomic_write_text
from ..errors import UserError

REQUIRED = {"id": str, "video": str, "audio": str, "duration": (int, float),
            "sample_rate": int, "fps": (int, float), "split": str, "cls": int,
            "tempo": (int, float), "mode": str, "beat_times": list, "cut_times": list,
            "onset_times": list, "piece": str, "seed": int}
SPLITS = ("train", "val", "test")


def split_of(piece: str) -> str:
    """Deterministic split of a piece: ~80 % train, 10 % val, 10 % test."""
    h = int.from_bytes(hashlib.sha256(piece.encode()).digest()[:8], "big") % 10
    return "test" if h == 0 else ("val" if h == 1 else "train")


def dumps(record: dict) -> str:
    """One manifest line (sorted keys, so equal records give equal bytes)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def write_manifest(path: str | Path, records: list[dict]) -> None:
    """Write the records as JSON lines, atomically."""
    atomic_write_text(path, "".join(dumps(r) + "\n" for r in records))


def validate_record(record: dict, where: str = "clip") -> None:
    """Raise ``UserError`` when a record misses a field or has an impossible value."""
    for key, typ in REQUIRED.items():
        if key not in record:
            raise UserError(f"{where}: missing field {key!r}")
        if not isinstance(record[key], typ) or isinstance(record[key], bool):
            raise UserError(f"{where}: field {key!r} has the wrong type")
    if record["split"] not in SPLITS:
        raise UserError(f"{where}: split {record['split']!r} is not one of {SPLITS}")
    if record["cls"] not in (0, 1, 2):
        raise UserError(f"{where}: cls {record['cls']} is not 0, 1 or 2")
    if record["mode"] not in ("major", "minor"):
        raise UserError(f"{where}: mode {record['mode']!r} is not major or minor")
    dur = float(record["duration"])
    for key in ("beat_times", "cut_times", "onset_times"):
        ts = record[key]
        if any(not (0.0 <= t <= dur) for t in ts) or any(b < a for a, b in zip(ts, ts[1:])):
            raise UserError(f"{where}: {key} must be increasing times within the clip")


def json_lines(path: str | Path) -> Iterator[tuple[str, dict]]:
    """``("PATH:LINE", record)`` for every non-blank line of a JSON-lines manifest.

    The one parser behind every manifest reader (the corpus's strict one here, the trainers'
    and ``diffv2m evaluate``'s lenient ones): a missing file or a line that is not a JSON
    object is a one-line :class:`UserError` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such manifest")
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{path}:{n}: not a JSON object") from None
        if not isinstance(rec, dict):
            raise UserError(f"{path}:{n}: not a JSON object")
        yield f"{path}:{n}", rec


def read_manifest(path: str | Path, *, strict: bool = True,
                  check_media: bool = True) -> list[dict]:
    """Records of a manifest (JSON lines).

    ``strict`` (the corpus builder's own manifests): every record validated, ids unique,
    media paths stay relative to the manifest's folder (``check_media``: each must exist).
    Lenient (``strict=False``; what the trainers read, so a user's own data needs only
    ``id``, ``video``, ``audio``, ``split``): media paths made absolute, each must be a file,
    at least one clip.
    """
    path = Path(path)
    if not strict:
        return _read_clips(path)
    records = []
    for where, rec in json_lines(path):
        validate_record(rec, where)
        if check_media:
            for key in ("video", "audio"):
                if not (path.parent / rec[key]).is_file():
                    raise UserError(f"{where}: {key} file {rec[key]} is missing")
        records.append(rec)
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        raise UserError(f"{path}: clip ids are not unique")
    return records


def _read_clips(path: Path) -> list[dict]:
    clips = []
    for where, clip in json_lines(path):
        for key in ("video", "audio"):
            if key not in clip:
                raise UserError(f"{where}: clip has no {key!r}")
            clip[key] = str((path.parent / clip[key]).resolve())
            if not Path(clip[key]).is_file():
                what = "no such file" if not Path(clip[key]).exists() else "not a file"
                raise UserError(f"{where}: clip {clip.get('id', '?')!r}: {key} {clip[key]}: {what}")
        clips.append(clip)
    if not clips:
        raise UserError(f"{path}: the manifest has no clips")
    return clips
