"""Errors, progress, Ctrl-C and the GIL."""

import threading
import time
import _thread

import pytest

import perkrec
from perkrec._progress import ProgressBar, resolve_progress


def test_error_classes_subclass_perkrec_error_and_the_natural_builtin():
    assert issubclass(perkrec.InputError, perkrec.Error) and issubclass(
        perkrec.InputError, ValueError
    )
    assert issubclass(perkrec.ConfigError, perkrec.Error) and issubclass(
        perkrec.ConfigError, ValueError
    )
    assert issubclass(perkrec.ModelFormatError, perkrec.Error) and issubclass(
        perkrec.ModelFormatError, ValueError
    )
    assert issubclass(perkrec.DivergenceError, perkrec.Error) and issubclass(
        perkrec.DivergenceError, ArithmeticError
    )
    with pytest.raises(perkrec.ModelFormatError) as info:
        perkrec.loads(b"definitely not a model file, just text of some length")
    assert info.value.code == "bad_magic"
    with pytest.raises(perkrec.ConfigError, match="n_users"):
        perkrec.simulate(n_users=0)


def test_version_matches_the_header():
    from pathlib import Path
    import re

    header = Path(__file__).resolve().parents[2] / "include" / "perkrec" / "version.hpp"
    match = re.search(r'PERKREC_VERSION_STRING "([0-9.]+)"', header.read_text())
    assert perkrec.__version__ == match.group(1)


def test_progress_callback_and_bar(capsys):
    seen = []
    perkrec.simulate(
        n_users=20000, progress=lambda stage, done, total: seen.append((stage, done, total))
    )
    assert seen[0] == ("simulate", 0, 20000)
    assert seen[-1] == ("simulate", 20000, 20000)
    assert [d for _, d, _ in seen] == sorted(d for _, d, _ in seen)
    bar = ProgressBar(width=10, min_interval=0.0)
    bar("fit", 5, 10)
    bar("fit", 10, 10)
    err = capsys.readouterr().err
    assert "fit:  50% [#####     ] 5/10" in err and err.endswith("10/10\n")
    assert resolve_progress(False) is None and isinstance(resolve_progress(True), ProgressBar)
    with pytest.raises(TypeError):
        resolve_progress("yes")


def test_ctrl_c_stops_long_work_quickly():
    timer = threading.Timer(0.2, _thread.interrupt_main)
    started = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        perkrec.simulate(n_users=1_000_000, num_threads=1)
    elapsed = time.perf_counter() - started
    timer.cancel()
    assert elapsed < 5.0, f"interrupt took {elapsed:.1f} s"


def test_compute_releases_the_gil():
    ticks = 0
    done = threading.Event()

    def work():
        perkrec.simulate(n_users=150_000, num_threads=1)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    # With the GIL held for the whole simulation, this loop could not have run meanwhile.
    assert ticks > 50
