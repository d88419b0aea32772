"""The registry of saved kinds (perkrec._serializable) and the import graph it untangles."""

import ast
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import perkrec
from perkrec import _core
from perkrec._serializable import _Serializable, loads, register, registered

PACKAGE = pathlib.Path(perkrec.__file__).parent


def _imports():
    """Module -> the perkrec modules it imports (at the top or inside a function)."""
    names = {p.stem for p in PACKAGE.glob("*.py")}
    graph = {}
    for path in PACKAGE.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.update(
                    [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
                )
        graph[path.stem] = deps & names - {"__init__"}
    return graph


def _cycles_through(graph, start):
    """The import cycles that pass through ``start``."""
    found, stack = [], [(start, [start])]
    while stack:
        node, path = stack.pop()
        for dep in sorted(graph.get(node, ())):
            if dep == start:
                found.append(path + [start])
            elif dep not in path:
                stack.append((dep, path + [dep]))
    return found


@pytest.mark.parametrize(
    "module", ["_serializable", "data", "io", "fm", "models", "preference", "uplift", "clv"]
)
def test_no_import_cycle_through_the_save_load_modules(module):
    graph = _imports()
    assert "io" not in graph["data"] and graph["_serializable"] <= {"_core", "_util"}
    assert _cycles_through(graph, module) == []


@pytest.mark.parametrize(
    "module",
    ["_serializable", "io", "data", "fm", "models", "preference", "uplift", "clv", "pipeline"],
)
def test_each_module_imports_alone_in_a_fresh_interpreter(module):
    code = f"import perkrec.{module} as m, perkrec._serializable as s; assert s.registered()"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_kind_load_any_returns_has_a_wrapper():
    kinds = registered()
    # Every _core class that reads container bytes is registered.
    saved = [c for c in vars(_core).values() if isinstance(c, type) and hasattr(c, "from_bytes")]
    assert saved and all(c in kinds for c in saved), [c.__name__ for c in saved if c not in kinds]
    assert kinds[_core.FM] is perkrec.FM and kinds[_core.EventLog] is perkrec.EventLog
    assert kinds[_core.BenefitPlannerFile] is perkrec.BenefitPlanner


def test_loads_wraps_in_the_registered_class_and_registration_is_checked():
    ids = perkrec.IdMap(np.array([5, 7, 9]))
    again = loads(ids.to_bytes())
    assert type(again) is perkrec.IdMap and again.to_bytes() == ids.to_bytes()
    assert type(perkrec.loads(ids.to_bytes())) is perkrec.IdMap

    class Other(_Serializable):
        pass  # no _core_class: not registered

    assert Other not in registered().values()
    with pytest.raises(TypeError, match="already registered"):
        register(_core.IdMap, Other)
