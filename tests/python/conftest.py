"""Shared fixtures. Tests that need ../shared/data skip when it is absent, and fail instead
when PERKREC_REQUIRE_DATA=1 (CI sets it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    return Path(os.environ.get("PERKREC_DATA_DIR", REPO.parent / "shared" / "data"))


def dataset_path(name: str) -> Path:
    """Folder of a shared dataset; skips the test (or fails under PERKREC_REQUIRE_DATA=1)."""
    path = data_root() / name
    if not path.is_dir():
        message = f"dataset folder {path} is absent"
        if os.environ.get("PERKREC_REQUIRE_DATA") == "1":
            pytest.fail(message + " and PERKREC_REQUIRE_DATA=1")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def small_program():
    import perkrec

    return perkrec.simulate(n_users=3000, seed=7)
