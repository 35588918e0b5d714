"""Progress reporting for the command line: one tqdm bar per stage on a terminal, one plain
line per stage otherwise (a host's log, CI), never carriage-return redraws there."""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from .synthesis import Progress


@contextlib.contextmanager
def cli_progress(disable: bool = False, stream=None) -> Iterator[Progress]:
    """Yield a ``progress(stage, done, total)`` callback reporting on ``stream`` (stderr).

    On a terminal: one tqdm bar following the current stage; when the stage changes (stages
    alternate, e.g. sampling and decoding per window) the old bar is closed and a fresh one
    opened.  Not on a terminal: ``diffv2m: STAGE (TOTAL steps)`` once per stage, when it starts.
    """
    stream = sys.stderr if stream is None else stream
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    if not is_tty:
        seen: set[str] = set()

        def plain(stage: str, done: int, total: int) -> None:
            if disable or stage in seen:
                return
            seen.add(stage)
            print(f"diffv2m: {stage} ({total} step{'s' if total != 1 else ''})", file=stream,
                  flush=True)

        yield plain
        return

    from tqdm import tqdm
    current: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if disable:
            return
        if stage not in current:
            for bar in current.values():
                bar.close()
            current.clear()
            current[stage] = tqdm(total=total, desc=stage, unit="step", leave=False,
                                  dynamic_ncols=True, file=stream)
        bar = current[stage]
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield progress
    finally:
        for bar in current.values():
            bar.close()
