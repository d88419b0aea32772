"""The package as a user gets it: the repaired wheel `make python` leaves in build/wheelhouse
(manylinux tag, its own libgomp, the extras' metadata) installed into a fresh virtual
environment and used from there, the sdist, and mypy over the examples with the package's
types. The wheel tests skip when no wheel was built (plain pytest), and fail instead under
PERKREC_REQUIRE_WHEEL=1 (make test)."""

from __future__ import annotations

import email.parser
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import perkrec

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO / "build" / "wheelhouse"


@pytest.fixture(scope="module")
def wheel() -> Path:
    found = sorted(WHEELHOUSE.glob("perkrec-*.whl"))
    if not found:
        message = f"no repaired wheel in {WHEELHOUSE} (make python builds it)"
        if os.environ.get("PERKREC_REQUIRE_WHEEL") == "1":
            pytest.fail(message + " and PERKREC_REQUIRE_WHEEL=1")
        pytest.skip(message)
    assert len(found) == 1, found
    return found[0]


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(z.read(name).decode())


def test_wheel_is_manylinux_and_carries_its_openmp_runtime(wheel):
    tag = wheel.name.split("-")[-1]
    assert "manylinux_" in tag and tag.endswith("_x86_64.whl"), wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert any(
        n.startswith("perkrec.libs/libgomp") for n in names
    ), "libgomp not grafted into the wheel"
    assert "perkrec/py.typed" in names and "perkrec/_core.pyi" in names
    assert any(
        n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names
    )


def test_extras_are_declared(wheel):
    meta = _metadata(wheel)
    extras = set(meta.get_all("Provides-Extra"))
    assert {"plots", "parquet", "spark", "bench", "test"} <= extras
    requires = meta.get_all("Requires-Dist")

    def of(extra):
        return {
            r.split(";")[0].strip().split(">")[0].split("=")[0].strip()
            for r in requires
            if f'extra == "{extra}"' in r
        }

    assert of("plots") == {"matplotlib"}
    assert of("parquet") == {"pyarrow"}
    assert of("spark") == {"pyspark"}
    assert "xgboost-cpu" in of("bench") and "xgboost" not in of("bench")
    runtime = {r.split(">")[0].strip() for r in requires if "extra ==" not in r}
    assert runtime == {"numpy", "scipy", "pandas"}


@pytest.mark.parametrize(
    "extra,modules",
    [
        ("plots", ["matplotlib"]),
        ("parquet", ["pyarrow", "pyarrow.parquet"]),
        ("spark", ["pyspark"]),
        ("bench", ["implicit", "xgboost", "lightgbm", "sklearn"]),
    ],
)
def test_extras_import_where_installed(extra, modules):
    for module in modules:
        pytest.importorskip(module, reason=f"the {extra} extra is not installed here")
    if extra == "plots":
        import matplotlib

        matplotlib.use("Agg")
        from perkrec import plots  # noqa: F401 - the module that needs the extra


def test_wheel_installs_and_fits_in_a_fresh_environment(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    py = env_dir / "bin" / "python"
    # numpy, scipy and pandas come from this environment (no network), after the fresh one's
    # own site-packages, so perkrec itself can only come from the wheel.
    fresh_site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            str(wheel),
        ],
        check=True,
    )
    # Written after the install, so pip never sees (or touches) this environment's perkrec.
    (fresh_site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    smoke = """
import json, perkrec
program = perkrec.simulate(n_users=400, seed=3)
m = perkrec.interaction_matrix(program.events)
model = perkrec.ALS(factors=4, iterations=3).fit(m)
ids, _ = model.recommend([0, 1, 2], m[[0, 1, 2]], n=5)
print(json.dumps({"file": perkrec.__file__, "core": perkrec._core.__file__, "version": perkrec.__version__,
                  "shape": list(ids.shape)}))
"""
    out = subprocess.run(
        [str(py), "-c", smoke], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["file"].startswith(str(fresh_site)), got
    assert got["version"] == perkrec.__version__
    assert got["shape"] == [3, 5]
    # The extension loads the wheel's own libgomp, not the system's.
    ldd = subprocess.run(["ldd", got["core"]], check=True, capture_output=True, text=True).stdout
    gomp = [line for line in ldd.splitlines() if "libgomp" in line]
    assert gomp and all("perkrec.libs" in line for line in gomp), ldd
    version = subprocess.run(
        [str(env_dir / "bin" / "perkrec"), "--version"], check=True, capture_output=True, text=True
    ).stdout
    assert perkrec.__version__ in version


def test_sdist_holds_the_sources_and_nothing_built(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--sdist",
            "--no-isolation",
            "-o",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    (sdist,) = tmp_path.glob("perkrec-*.tar.gz")
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for needed in [
        "pyproject.toml",
        "CMakeLists.txt",
        "LICENSE",
        "README.md",
        "src/perkrec.cpp",
        "include/perkrec/perkrec.hpp",
        "python/bindings/module.cpp",
        "python/perkrec/__init__.py",
        "cmake/perkrec.pc.in",
    ]:
        assert needed in names, needed
    assert not any(n.startswith(("build/", ".venv/", "perkrec-demo/")) for n in names)


def test_examples_type_check_with_the_package_types(tmp_path):
    pytest.importorskip("mypy")
    # The notebooks' code cells, one module per notebook, beside examples/python.
    sources = [str(p) for p in sorted((REPO / "examples" / "python").glob("*.py"))]
    for nb in sorted((REPO / "examples" / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        code = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        target = tmp_path / (nb.stem.replace("-", "_") + ".py")
        target.write_text(code + "\n")
        sources.append(str(target))
    cache = REPO / "build" / "mypy-cache"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(cache),
            *sources,
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # The check has teeth: a wrong type against perkrec's stubs is reported.
    bad = tmp_path / "bad.py"
    bad.write_text("import perkrec\nperkrec.Popularity(weighting=3)\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(cache),
            str(bad),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and '"weighting"' in out.stdout, out.stdout
