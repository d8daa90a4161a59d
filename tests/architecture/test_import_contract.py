"""The import contract (pyproject.toml, import-linter) holds, and fails on a backward arrow.

The failing cases run import-linter on a copy of the package with one bad import added, so the
contract is shown to catch what DESIGN.md forbids: a lower layer importing a higher one, a
cycle between a package's modules, and a framework import in the domain core.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
         "lint_imports_command()", "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False)


def test_the_code_keeps_the_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("module", "line", "broken"), [
    ("domain/rubric.py", "import lti_tool.grades.evaluation", "lti_tool.domain is not allowed "
     "to import lti_tool.grades"),
    ("lms/nrps.py", "import lti_tool.launch.flow", "lti_tool.lms is not allowed to import "
     "lti_tool.launch"),
    ("catalogue/service.py", "import lti_tool.badges.issuance", "lti_tool.catalogue is not "
     "allowed to import lti_tool.badges"),
    ("grades/marks.py", "import lti_tool.grades.decisions", "No import cycles"),
    ("domain/decisions.py", "import sqlalchemy", "The domain core is pure"),
])
def test_a_bad_import_breaks_the_build(tmp_path: Path, module: str, line: str,
                                       broken: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "lti_tool", tree / "lti_tool",
                    ignore=shutil.ignore_patterns("translations", "static", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    target = tree / "lti_tool" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout
