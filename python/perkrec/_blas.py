"""BLAS thread pools limited while perkrec's own OpenMP threads compute.

numpy and scipy ship OpenBLAS (or link MKL); a pool of BLAS threads used between perkrec calls,
or from another Python thread while perkrec trains with the GIL released, competes with
perkrec's OpenMP threads for the same cores. ``limited()`` sets every BLAS library loaded in
the process to one thread for the duration of a perkrec call and restores the previous counts
afterwards, so no user has to set OPENBLAS_NUM_THREADS. The libraries are found in the
process's memory map (Linux) and driven through their own thread-count functions (OpenBLAS's
``openblas_set_num_threads`` under any of the symbol prefixes numpy and scipy build it with,
MKL's ``MKL_Set_Num_Threads``); where none is found this does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import List, Optional, Tuple

_GET_SET = [
    ("openblas_get_num_threads", "openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("MKL_Get_Max_Threads", "MKL_Set_Num_Threads"),
]

_lock = threading.Lock()
_depth = 0
_saved: List[Tuple[object, int]] = []
_found: Optional[List[Tuple[object, object]]] = None


def _loaded_paths() -> List[str]:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            lines = maps.readlines()
    except OSError:
        return []
    paths = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 6:
            path = parts[-1]
            low = path.lower()
            if (
                path.startswith("/")
                and ("openblas" in low or "libmkl_rt" in low)
                and path not in paths
            ):
                paths.append(path)
    return paths


def _libraries() -> List[Tuple[object, object]]:
    """(get, set) function pairs of the BLAS libraries loaded now (found once per process,
    again when none was found yet: numpy may load later)."""
    global _found
    if _found:
        return _found
    pairs = []
    for path in _loaded_paths():
        try:
            lib = ctypes.CDLL(path, mode=getattr(ctypes, "RTLD_NOLOAD", 0) | ctypes.RTLD_LOCAL)
        except OSError:
            continue
        for get_name, set_name in _GET_SET:
            get = getattr(lib, get_name, None)
            set_ = getattr(lib, set_name, None)
            if get is not None and set_ is not None:
                get.restype = ctypes.c_int
                get.argtypes = []
                set_.restype = None
                set_.argtypes = [ctypes.c_int]
                pairs.append((get, set_))
                break
    _found = pairs
    return pairs


def blas_threads() -> Optional[int]:
    """The largest thread count of the BLAS libraries loaded in the process (None: none found)."""
    counts = []
    for get, _ in _libraries():
        try:
            counts.append(int(get()))
        except Exception:  # noqa: BLE001 - a foreign library's call; never fail a perkrec call on it
            pass
    return max(counts) if counts else None


@contextlib.contextmanager
def limited(threads: int = 1):
    """BLAS libraries at ``threads`` threads inside the block (re-entrant and thread-safe: the
    outermost block sets and restores)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = []
            for get, set_ in _libraries():
                try:
                    before = int(get())
                    if before != threads:
                        set_(threads)
                        _saved.append((set_, before))
                except Exception:  # noqa: BLE001
                    pass
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for set_, before in _saved:
                    try:
                        set_(before)
                    except Exception:  # noqa: BLE001
                        pass
                _saved = []
