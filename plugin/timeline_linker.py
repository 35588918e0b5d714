"""The bridge's OTIO media linker ("diffv2m_relink"): find each clip's media file (torch-free).

Registered the OTIO way, as a ``media_linker`` plugin: ``plugin_manifest.json`` beside this
module lists it, and pyproject's ``opentimelineio.plugins`` entry point names this module
(OTIO calls :func:`plugin_manifest`). :func:`diffv2m.plugin.timeline.load_timeline` reads
every timeline with ``media_linker_name="diffv2m_relink"``; OTIO then calls
:func:`link_media_reference` once per clip with the argument map
``{"timeline_dir": ..., "media_root": ...}``.

Rules (:func:`find_media`):

* The reference's URL: ``file://`` URLs, plain POSIX paths, Windows paths
  (``S:\\media\\a.mov``, ``\\\\server\\share\\a.mov``, ``file:///S:/media/a.mov``: split on
  backslashes as well as slashes). A relative path is relative to the timeline's folder.
* If that file exists it is used as is (the reference is left untouched).
* Else, with a media root: a file under it with the same file name; else, by clip name
  (EDLs from Resolve carry only ``* FROM CLIP NAME:``): a file whose name or stem equals the
  clip's name (or the reference's name). Several files of that name: the one whose folders
  match most of the original path's last folders (``CARD2/C0001.MP4``), then the first in
  sorted path order.
* A relinked clip gets a new ExternalReference (absolute ``file://`` URL) keeping the old
  reference's available range and metadata, plus ``metadata["diffv2m"]["relinked_from"]``.
* Nothing found: the reference is left as it is; the bridge reports it only if the clip is
  in the selection. Remote URLs (http, https, ...) are never fetched nor relinked.
"""
from __future__ import annotations

import os
import re
import time
import urllib.parse
from functools import lru_cache
from pathlib import Path, PureWindowsPath

import opentimelineio as otio

LINKER_NAME = "diffv2m_relink"
REMOTE_SCHEMES = ("http", "https", "ftp", "s3", "gs")

__all__ = ["LINKER_NAME", "link_media_reference", "find_media", "url_to_path",
           "plugin_manifest"]

_WIN_DRIVE = re.compile(r"^/?[A-Za-z]:[\\/]")


def plugin_manifest():
    """OTIO's entry-point hook: the manifest beside this module."""
    return otio.plugins.manifest.manifest_from_file(
        str(Path(__file__).with_name("plugin_manifest.json")))


def url_to_path(url: str) -> tuple[str, bool]:
    """(path text, is_windows) of a media URL or path; raises ValueError for remote URLs.

    Windows paths keep their backslash form (``S:\\media\\a.mov``) and report True.
    """
    url = url or ""
    parsed = urllib.parse.urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme in REMOTE_SCHEMES:
        raise ValueError(f"remote URL {url}")
    if scheme == "file":
        raw = urllib.parse.unquote(parsed.path)
        if parsed.netloc and parsed.netloc != "localhost":
            raw = f"//{parsed.netloc}{raw}"
    elif len(scheme) == 1 or not scheme:       # "C:\..." parses as scheme "c"
        raw = url
    else:
        raise ValueError(f"unsupported URL scheme in {url}")
    if _WIN_DRIVE.match(raw) or "\\" in raw:
        return str(PureWindowsPath(raw.lstrip("/") if _WIN_DRIVE.match(raw) else raw)), True
    return raw, False


def _file_name(raw: str, windows: bool) -> str:
    return PureWindowsPath(raw).name if windows else Path(raw).name


RESCAN_SECONDS = 10.0


@lru_cache(maxsize=16)
def _index(root: str, _epoch: int) -> dict[str, list[str]]:
    """Every file under ``root`` by file name and by stem (lower-case), sorted paths."""
    idx: dict[str, list[str]] = {}
    for dirpath, dirnames, files in os.walk(root):
        dirnames.sort()
        for f in sorted(files):
            full = os.path.join(dirpath, f)
            for key in {f.lower(), os.path.splitext(f)[0].lower()}:
                idx.setdefault(key, []).append(full)
    for v in idx.values():
        v.sort()
    return idx


def _lookup(media_root: Path, names: list[str], parts: tuple[str, ...] = ()) -> Path | None:
    """The first name with a file under ``media_root``; among several files of that name, the
    one whose folders match most of the original path's last folders (camera cards all
    hold a ``C0001.MP4``), then the first in sorted order."""
    if not media_root.is_dir():
        return None
    # One scan serves a load/resolve; files added later are seen after RESCAN_SECONDS.
    epoch = int(time.monotonic() // RESCAN_SECONDS)
    idx = _index(str(media_root.resolve()), epoch)
    want = [p.lower() for p in reversed(parts)]

    def score(path: str) -> int:
        got = [p.lower() for p in reversed(Path(path).parts[:-1])]
        n = 0
        for a, b in zip(want, got):
            if a != b:
                break
            n += 1
        return n

    for n in names:
        hits = [h for h in idx.get(n.lower(), []) if os.path.isfile(h)] if n else []
        if hits:
            return Path(max(hits, key=lambda h: (score(h), -hits.index(h))))
    return None


def find_media(url: str | None, *, clip_name: str = "", ref_name: str = "",
               timeline_dir: Path | None = None, media_root: Path | None = None
               ) -> tuple[Path | None, Path | None]:
    """(found file or None, the path the reference names or None).

    Raises ValueError for remote URLs and unsupported schemes (the caller words the error).
    """
    named = None
    candidates: list[str] = []
    parts: tuple[str, ...] = ()
    if url:
        raw, windows = url_to_path(url)
        if raw:
            name = _file_name(raw, windows)
            parts = (PureWindowsPath(raw) if windows else Path(raw)).parts[:-1]
            if not windows:
                p = Path(raw)
                if not p.is_absolute() and timeline_dir is not None:
                    p = Path(timeline_dir) / p
                named = p
                if p.is_file():
                    return p, named
            else:
                named = Path(raw)
                if Path(raw).is_file():              # on Windows itself
                    return Path(raw), named
            candidates.append(name)
    if media_root is not None:
        candidates += [clip_name, ref_name]
        hit = _lookup(Path(media_root), [c for c in candidates if c], parts)
        if hit is not None:
            return hit, named
    return None, named


def link_media_reference(in_clip, media_linker_argument_map=None):
    """OTIO media-linker entry: a relinked ExternalReference, or the clip's own reference."""
    args = media_linker_argument_map or {}
    ref = in_clip.media_reference
    if isinstance(ref, otio.schema.GeneratorReference):
        return ref
    url = ref.target_url if isinstance(ref, otio.schema.ExternalReference) else None
    timeline_dir = Path(args["timeline_dir"]) if args.get("timeline_dir") else None
    media_root = Path(args["media_root"]) if args.get("media_root") else None
    try:
        found, named = find_media(url, clip_name=in_clip.name, ref_name=ref.name or "",
                                  timeline_dir=timeline_dir, media_root=media_root)
    except ValueError:
        return ref                          # remote: the bridge refuses it when selected
    if found is None or (named is not None and found == named):
        return ref
    new = otio.schema.ExternalReference(target_url=found.resolve().as_uri(),
                                        available_range=ref.available_range)
    new.name = ref.name
    md = dict(ref.metadata)
    md["diffv2m"] = {**dict(md.get("diffv2m", {})),
                     "relinked_from": url or f"clip name {in_clip.name!r}"}
    for k, v in md.items():
        new.metadata[k] = v
    return new
