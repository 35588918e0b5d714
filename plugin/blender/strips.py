"""Blender's side of the picture and of the takes: movie strips in, sound strips out.

Reads the scene's movie strips into :class:`~.picture.Piece` rows (refusing what Blender lets
through silently: a missing movie file becomes a 1-frame strip with fps 0), decides which span
to score, finds the first free channel above the picture and adds each take there as a SOUND
strip with its metadata as custom properties (``diffv2m_*``; they are saved in the .blend).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import bpy

from diffv2m.errors import UserError

from .picture import Piece, Span, cover, media_rate, scene_rate

MAX_CHANNEL = 128
PROP = "diffv2m_"


def scene_of(context):
    """The scene the Sequencer edits (5.0: ``context.sequencer_scene``, None headless)."""
    return getattr(context, "sequencer_scene", None) or context.scene


def rate_of(scene) -> "Fraction":  # noqa: F821
    return scene_rate(scene.render.fps, scene.render.fps_base)


def data_dir() -> Path:
    """``//diffv2m/`` next to the saved .blend; a temp folder for an unsaved file."""
    if bpy.data.filepath:
        return Path(bpy.path.abspath("//diffv2m"))
    return Path(tempfile.gettempdir()) / "diffv2m-blender"


def all_strips(ed) -> list:
    """Every strip, meta strips' contents included (5.0 ``strips_all``; 4.2-4.4 ``sequences_all``)."""
    coll = getattr(ed, "strips_all", None)
    return list(coll if coll is not None else ed.sequences_all)


def top_strips(ed):
    """The top level collection that creates and removes strips (4.2-4.4: ``sequences``)."""
    coll = getattr(ed, "strips", None)
    return coll if coll is not None else ed.sequences


def movie_strips(scene) -> list:
    ed = scene.sequence_editor
    return [s for s in all_strips(ed) if s.type == "MOVIE"] if ed else []


def is_take(strip) -> bool:
    return strip.type == "SOUND" and (PROP + "seed") in strip.keys()


def check_movie(strip) -> Path:
    """The strip's movie file, or a UserError saying why Blender cannot really play it."""
    path = Path(bpy.path.abspath(strip.filepath))
    if not strip.filepath or not path.is_file():
        raise UserError(f"movie strip {strip.name!r}: file {path} is missing "
                        "(Blender shows it as a 1-frame strip); relink it first")
    if not strip.fps > 0:
        raise UserError(f"movie strip {strip.name!r}: {path} has no readable video "
                        "(Blender reads 0 fps)")
    if len(getattr(strip, "retiming_keys", ())) > 2 or getattr(strip, "use_reverse_frames", False):
        raise UserError(f"movie strip {strip.name!r}: retimed or reversed strips are not "
                        "supported; apply the speed change first")
    return path


def piece_of(strip) -> Piece:
    """The strip as it plays: scene frames [final_start, final_end) from its source frame."""
    path = check_movie(strip)
    start = int(strip.frame_final_start)
    source = int(round(strip.animation_offset_start + (start - strip.frame_start)))
    return Piece(start, int(strip.frame_final_end), path, source, media_rate(strip.fps),
                 strip.name)


def selected_movies(context, scene) -> list:
    movies = [s for s in movie_strips(scene) if s.select and not s.mute]
    if not movies:
        active = scene.sequence_editor.active_strip if scene.sequence_editor else None
        if active is not None and active.type == "MOVIE" and not active.mute:
            movies = [active]
    return movies


def marker_range(scene) -> tuple[int, int] | None:
    """Between two selected markers (or the only two markers)."""
    markers = sorted(scene.timeline_markers, key=lambda m: m.frame)
    chosen = [m for m in markers if m.select]
    if len(chosen) < 2 and len(markers) == 2:
        chosen = markers
    if len(chosen) < 2:
        return None
    return int(chosen[0].frame), int(chosen[-1].frame)


def resolve_span(context, mode: str = "AUTO") -> tuple[Span, int, str]:
    """``(span, highest picture channel, how it was chosen)`` for ``mode``:
    AUTO | STRIPS | MARKERS | PREVIEW | SCENE."""
    scene = scene_of(context)
    if scene.sequence_editor is None:
        raise UserError(f"scene {scene.name!r} has no sequence editor")
    rate = rate_of(scene)
    chosen = selected_movies(context, scene) if mode in ("AUTO", "STRIPS") else []
    if chosen:
        start = min(s.frame_final_start for s in chosen)
        end = max(s.frame_final_end for s in chosen)
        pool, how = chosen, ("selected strips" if len(chosen) > 1 else f"strip {chosen[0].name!r}")
    else:
        if mode == "STRIPS":
            raise UserError("no movie strip is selected or active")
        rng = marker_range(scene) if mode in ("AUTO", "MARKERS") else None
        if rng is not None:
            (start, end), how = rng, "markers"
        elif mode == "MARKERS":
            raise UserError("select two markers to score between them")
        elif scene.use_preview_range and mode in ("AUTO", "PREVIEW"):
            start, end, how = scene.frame_preview_start, scene.frame_preview_end + 1, "preview range"
        else:
            start, end, how = scene.frame_start, scene.frame_end + 1, "scene range"
        pool = [s for s in movie_strips(scene) if not s.mute
                and s.frame_final_start < end and s.frame_final_end > start]
    if not pool:
        raise UserError(f"no movie strip in frames {start}-{end}")
    pieces = [piece_of(s) for s in pool]
    span = cover(int(start), int(end), rate, pieces, [s.channel for s in pool])
    if all(p.path is None for p in span.pieces):
        raise UserError(f"no picture in frames {start}-{end}")
    return span, max(s.channel for s in pool), how


def channel_free(scene, channel: int, start: int, end: int) -> bool:
    return not any(s.channel == channel and s.frame_final_start < end and s.frame_final_end > start
                   for s in all_strips(scene.sequence_editor))


def free_channel(scene, above: int, start: int, end: int) -> int:
    """The first channel above ``above`` with nothing in frames ``[start, end)``."""
    for ch in range(above + 1, MAX_CHANNEL + 1):
        if channel_free(scene, ch, start, end):
            return ch
    raise UserError(f"no free channel above {above} for frames {start}-{end}")


def takes_of(scene, span_key: str) -> list:
    ed = scene.sequence_editor
    return [s for s in all_strips(ed) if is_take(s) and s.get(PROP + "span") == span_key] if ed else []


def add_take(scene, span: Span, above: int, result, settings: dict) -> object:
    """Put ``result`` (an engine Result) on the first free channel above the picture."""
    ed = scene.sequence_editor
    channel = free_channel(scene, above, span.start, span.end)
    path = str(result.path)
    if bpy.data.filepath:
        try:
            path = bpy.path.relpath(path)
        except ValueError:      # another drive (Windows): keep it absolute
            pass
    name = f"Diff-V2M take {result.seed}"
    strip = top_strips(ed).new_sound(name, path, channel, span.start)
    if strip.channel != channel or strip.frame_final_start != span.start:
        got = (strip.channel, strip.frame_final_start)
        top_strips(ed).remove(strip)
        raise UserError(f"{name}: Blender placed it at channel {got[0]} frame {got[1]}, not "
                        f"channel {channel} frame {span.start}; nothing added")
    if abs(strip.frame_final_duration - span.frames) > 1:
        strip.frame_final_duration = span.frames
    overlap = [s.name for s in all_strips(ed) if s != strip and s.channel == strip.channel
               and s.frame_final_start < strip.frame_final_end and s.frame_final_end > strip.frame_final_start]
    if overlap:
        top_strips(ed).remove(strip)
        raise UserError(f"{name}: would overlap {', '.join(overlap)} on channel {channel}")
    meta = result.metadata
    props = {
        "seed": int(result.seed), "model": str(meta.get("model", "")),
        "steps": int(meta.get("steps", settings.get("steps", 0))),
        "guidance": float(meta.get("cfg_scale", settings.get("cfg_scale", 0.0))),
        "sampler": str(meta.get("sampler", settings.get("sampler", ""))),
        "style": int(meta.get("cls", settings.get("style", 1))),
        "key": str(meta.get("key", "")),
        "backend": str(meta.get("backend", "")), "engine": str(meta.get("engine", "")),
        "graph_hashes": {k: str(v) for k, v in dict(meta.get("graph_hashes", {})).items()},
        "span": span.key(), "span_start": int(span.start), "span_end": int(span.end),
        "retimed": bool(span.retimed), "take": str(result.path), "kept": False,
    }
    for k, v in props.items():
        strip[PROP + k] = v
    others = [s for s in takes_of(scene, span.key()) if s != strip]
    if any(s.get(PROP + "kept") for s in others):
        strip.mute = True              # a take is kept: the new one is an alternate
    else:
        for s in others:
            s.mute = True              # audition the newest take
        strip.mute = False
    return strip


def keep(scene, strip) -> None:
    """Keep ``strip``: unmuted and marked; the span's other takes muted."""
    for s in takes_of(scene, strip.get(PROP + "span", "")):
        s[PROP + "kept"] = s == strip
        s.mute = s != strip


def discard(scene, strip) -> None:
    """Remove a take's strip (its WAV stays on disk, so undo can bring it back)."""
    top_strips(scene.sequence_editor).remove(strip)


def next_seed(scene, span_key: str, seed: int) -> int:
    used = {int(s.get(PROP + "seed", -1)) for s in takes_of(scene, span_key)}
    s = seed
    while s in used:
        s += 1
    return s


def abspath(path: str) -> str:
    return os.path.normpath(bpy.path.abspath(path))
