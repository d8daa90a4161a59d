"""A pass is never recorded without its badge (issue 12).

The evaluation imported the badges area inside `try/except ImportError` and, when that failed
(pyld unimportable), recorded the pass without a credential and logged at INFO. Now the import
is plain: a missing dependency stops the tool from starting instead, and no module of ours is
imported through a fallback.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_without_the_badges_dependencies_the_evaluation_does_not_load() -> None:
    code = ("import sys; sys.modules['pyld'] = None\n"
            "import lti_tool.grades.evaluation\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert "import of pyld halted" in result.stderr


def _fallbacks(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                names = ast.unparse(handler.type) if handler.type else ""
                if "ImportError" in names or "ModuleNotFoundError" in names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} except {names}")
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} importlib.import_module")
    return found


def test_no_module_of_ours_is_imported_through_a_fallback() -> None:
    found = [hit for path in sorted((ROOT / "lti_tool").rglob("*.py"))
             if "migrations" not in path.parts for hit in _fallbacks(path)]
    assert found == []
