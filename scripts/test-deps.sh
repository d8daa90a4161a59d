#!/usr/bin/env bash
# Install what the tests use, where it is missing: the package with its dev extras, Debian's
# Chromium and PostgreSQL, Node and the verifiers/axe-core in tests/node. Quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v node >/dev/null || need_apt+=(nodejs npm)
command -v openssl >/dev/null || need_apt+=(openssl)  # the RFC 3161 TSA in tests/evidence
# WeasyPrint (the annual report's PDF): Pango, HarfBuzz and a font; pdftotext/pdftoppm for tests.
command -v pdftotext >/dev/null || need_apt+=(poppler-utils)
ldconfig -p | grep -q libpangoft2-1.0 || need_apt+=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0)
fc-list 2>/dev/null | grep -qi dejavu || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "== missing Debian packages (run as root to install): ${need_apt[*]}" >&2
  fi
fi

# The package and its test tools, unless they are installed (tests import this checkout
# first, pytest's pythonpath is ".").
if ! python3 -c "import importlib.metadata as m; m.distribution('lti-microcredentials'); \
import pytest, xdist, hypothesis, playwright" 2>/dev/null; then
  echo "== installing the package with its dev extras"
  python3 -m pip install -q -e '.[dev]'
fi

if [ -f tests/node/package.json ] && command -v npm >/dev/null \
    && [ ! -d tests/node/node_modules ]; then
  echo "== installing tests/node packages"
  (cd tests/node && npm ci --no-audit --no-fund --silent)
fi
