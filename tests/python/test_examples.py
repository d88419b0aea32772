"""The Python examples run as documented."""

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"


def test_quickstart_runs(capsys):
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "'ndcg'" in out and "benefit" in out


# --- README ----------------------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_python_blocks():
    import re

    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_quickstart_blocks_run(tmp_path, monkeypatch):
    """The README's notebook cell (a plan and its report in one cell) and its Python section
    (quick start, collaborative filtering, redemption models, your own data) run verbatim, on
    smaller simulated programs."""
    blocks = _readme_python_blocks()
    assert len(blocks) >= 5 and "BenefitPlanner" in blocks[0]
    code = (
        "\n".join(blocks[:5])
        .replace("n_users=20_000", "n_users=2_000")
        .replace("n_users=5000", "n_users=1500")
    )
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    exec(compile(code, str(README), "exec"), namespace)
    page = (tmp_path / "campaign.html").read_text(encoding="utf-8")
    assert page.lower().startswith("<!doctype html>") and "budget" in page.lower()


def test_readme_constructor_keywords_exist():
    """Every ``perkrec.Name(keyword=...)`` in any README block names a real class or function
    and keywords its signature accepts (a stale ``FM(field_aware=True)`` fails here)."""
    import ast
    import inspect

    import perkrec

    checked = 0
    for block in _readme_python_blocks():
        for node in ast.walk(ast.parse(block)):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "perkrec"
            ):
                continue
            target = getattr(perkrec, node.func.attr, None)
            assert target is not None, f"README uses perkrec.{node.func.attr}, which does not exist"
            try:
                params = inspect.signature(target).parameters
            except (TypeError, ValueError):
                continue
            if any(p.kind == p.VAR_KEYWORD for p in params.values()):
                continue
            for kw in node.keywords:
                if kw.arg is not None:
                    assert (
                        kw.arg in params
                    ), f"README: perkrec.{node.func.attr}({kw.arg}=...) is not accepted"
                    checked += 1
    assert checked > 10


def test_readme_command_line_block_runs(tmp_path, monkeypatch, capsys):
    """The README's "From files, one command" block runs verbatim (in-process: each
    ``perkrec ...`` line through perkrec.cli.main) and writes what it says."""
    import re
    import shlex

    from perkrec.cli import main

    text = README.read_text(encoding="utf-8")
    block = re.search(r"### From files, one command\n.*?```sh\n(.*?)```", text, flags=re.S).group(1)
    commands = [
        c.split("#")[0].strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()
    ]
    assert [c.split()[1] for c in commands] == ["simulate", "validate", "plan", "evaluate"]
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "perkrec"
        assert main(argv[1:]) == 0, (command, capsys.readouterr())
    assert (tmp_path / "plan.csv").stat().st_size > 0 and (
        tmp_path / "report.html"
    ).stat().st_size > 0
    assert "Off-policy estimate" in capsys.readouterr().out
