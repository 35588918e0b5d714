"""Progress reporting for the command line: one tqdm bar per stage."""
from __future__ import annotations

import contextlib
from typing import Iterator

from .synthesis import Progress


@contextlib.contextmanager
def cli_progress(disable: bool = False) -> Iterator[Progress]:
    """Yield a ``progress(stage, done, total)`` callback drawing one tqdm bar on stderr.

    The bar follows the current stage; when the stage changes (stages alternate, e.g.
    sampling and decoding per window) the old bar is closed and a fresh one opened.
    """
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
                                  dynamic_ncols=True)
        bar = current[stage]
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield progress
    finally:
        for bar in current.values():
            bar.close()
