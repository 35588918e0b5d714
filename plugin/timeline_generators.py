"""What a generator clip shows (torch-free): solid colours, title stand-ins, black.

Used by the resolver of :mod:`diffv2m.plugin.timeline` for clips with a GeneratorReference.
"""
from __future__ import annotations

import re

__all__ = ["generator_colour", "TITLE_STAND_IN"]

#: What a title/text generator is shown as: mid grey (a documented stand-in; the text itself
#: is not rendered). Bars, slugs and unknown generators are black.
TITLE_STAND_IN = (128, 128, 128)
_COLOUR_KINDS = ("color", "colour", "matte", "solid")
_TITLE_KINDS = ("text", "title", "lower3rd", "lower third", "outline", "typewriter", "scroll",
                "crawl")


def generator_colour(ref, clip_name: str = "") -> tuple[tuple[int, int, int], str | None]:
    """(RGB 0-255, note or None) for a GeneratorReference.

    Solid colours: OTIO's ``SolidColor`` parameters (``color`` [r, g, b] in 0-1 or 0-255),
    FCP 7 XML colour mattes (``<parameter><parameterid>color</parameterid><value><red>...``,
    kept by the fcp_xml reader under ``metadata["fcp_xml"]``) and Kdenlive/MLT colour
    producers (``0xRRGGBBAA`` / ``#RRGGBB``). Titles get :data:`TITLE_STAND_IN` and a note.
    """
    kind = (ref.generator_kind or "").lower()
    name = (ref.name or "").lower()
    blob = {"parameters": _plain(ref.parameters), "metadata": _plain(ref.metadata)}
    rgb = _find_colour(blob)
    if rgb is not None and not any(k in kind or k in name for k in _TITLE_KINDS):
        return rgb, None
    if any(k in kind or k in name for k in _TITLE_KINDS):
        return TITLE_STAND_IN, (f"clip {clip_name!r}: title generator "
                                f"{ref.generator_kind or ref.name!r} shown as a grey stand-in "
                                "(text is not rendered)")
    if any(k in kind or k in name for k in _COLOUR_KINDS):
        return (0, 0, 0), (f"clip {clip_name!r}: colour generator without a readable colour; "
                           "shown as black")
    return (0, 0, 0), (f"clip {clip_name!r}: generator {ref.generator_kind or ref.name!r} "
                       "shown as black")


def _plain(obj):
    """OTIO's AnyDictionary/AnyVector as plain dicts and lists."""
    if hasattr(obj, "items") and not isinstance(obj, (str, bytes)):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) or type(obj).__name__ == "AnyVector":
        return [_plain(v) for v in obj]
    return obj


def _find_colour(obj) -> tuple[int, int, int] | None:
    """A colour anywhere in nested metadata: {red, green, blue}, [r, g, b] under a colour key,
    or a 0xRRGGBB[AA] / #RRGGBB string under a colour key."""
    if isinstance(obj, dict):
        low = {str(k).lower(): v for k, v in obj.items()}
        if all(k in low for k in ("red", "green", "blue")):
            try:
                vals = [float(low[k]) for k in ("red", "green", "blue")]
                return _to_255(vals)
            except (TypeError, ValueError):
                pass
        pid = str(low.get("parameterid", low.get("name", ""))).lower()
        for k, v in low.items():
            if ("color" in k or "colour" in k or (k == "value" and "colo" in pid)):
                got = _colour_value(v)
                if got is not None:
                    return got
        for v in obj.values():
            got = _find_colour(v)
            if got is not None:
                return got
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            got = _find_colour(v)
            if got is not None:
                return got
    return None


def _colour_value(v) -> tuple[int, int, int] | None:
    if isinstance(v, dict):
        return _find_colour(v)
    if isinstance(v, (list, tuple)) and len(v) >= 3 and all(
            isinstance(x, (int, float)) for x in v[:3]):
        return _to_255([float(x) for x in v[:3]])
    if isinstance(v, str):
        t = v.strip().lower()
        m = re.fullmatch(r"(?:0x|#)([0-9a-f]{6})([0-9a-f]{2})?", t)
        if m:
            h = m.group(1)
            return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    return None


def _to_255(vals) -> tuple[int, int, int]:
    scale = 255.0 if max(vals) <= 1.0 else 1.0
    return tuple(int(round(min(255.0, max(0.0, x * scale)))) for x in vals)
