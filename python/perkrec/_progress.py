"""Progress reporting for long calls: a small text progress bar, or the caller's callable."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, Union

ProgressArg = Union[bool, Callable[[str, int, int], None], None]


class ProgressBar:
    """Draws ``stage: 42% [########            ] 4200/10000`` on stderr, redrawn in place."""

    def __init__(self, width: int = 30, stream=None, min_interval: float = 0.1):
        self.width = width
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval = min_interval
        self._last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        finished = total > 0 and done >= total
        if not finished and now - self._last < self.min_interval:
            return
        self._last = now
        fraction = done / total if total > 0 else 0.0
        filled = int(round(self.width * fraction))
        bar = "#" * filled + " " * (self.width - filled)
        self.stream.write(f"\r{stage}: {100 * fraction:3.0f}% [{bar}] {done}/{total}")
        if finished:
            self.stream.write("\n")
        self.stream.flush()


def resolve_progress(progress: ProgressArg) -> Optional[Callable[[str, int, int], None]]:
    """``True`` gives a ProgressBar, a callable is used as is, ``False``/``None`` gives none."""
    if progress is True:
        return ProgressBar()
    if progress is False or progress is None:
        return None
    if callable(progress):
        return progress
    raise TypeError(f"progress must be a bool or a callable (got {type(progress).__name__})")
