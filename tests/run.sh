#!/usr/bin/env bash
# The test command: lint, the suite on SQLite, then the suite on a throwaway PostgreSQL 15,
# then once the scale suite (tests/scale, marked `scale`: skipped in the two runs before).
set -euo pipefail
cd "$(dirname "$0")/.."
# Complete on its own on a fresh machine: install what is missing first.
bash scripts/test-deps.sh
workers="${PYTEST_WORKERS:-2}"
echo "== ruff"
ruff check .
echo "== import contract (import-linter: layers of DESIGN.md, no cycles, a pure domain)"
lint-imports
echo "== mypy (strict on lti_tool/domain)"
mypy
echo "== pytest on SQLite"
python -m pytest -n "$workers" "$@"
echo "== pytest on PostgreSQL"
read -r pgdir pgurl < <(bash tests/pg.sh)
trap 'bash tests/pg.sh stop "$pgdir"' EXIT
LTI_TOOL_TEST_DATABASE_URL="$pgurl" python -m pytest -n "$workers" -m "not browser and not node" "$@"
echo "== scale suite on PostgreSQL (3 serve, 2 workers, faults; starts its own cluster)"
# About 3-4 minutes on 2 cores; the timeout bounds a hung run.
LTI_TOOL_TEST_DATABASE_URL="$pgurl" timeout 900 python -m pytest -n 0 -m scale tests/scale
