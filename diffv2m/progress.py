"""Progress reporting for the command line: one tqdm bar per stage."""
from __future__ import annotations

import contextlib
from typing import Iterator

from .synthesis import Progress


@contextlib.contextmanager
def cli_progress(disable: bool = False) -> Iterator[Progress]:
    """Yield a ``progress(stage, done, total)`` callback drawing tqdm bars on stderr."""
    from tqdm import tqdm
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if disable:
            return
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="step", leave=False,
                                     dynamic_ncols=True)
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.close()
