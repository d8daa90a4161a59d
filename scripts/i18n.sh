#!/usr/bin/env bash
# Translation catalogue: extract every _() string of lti_tool/, merge into the Turkish catalogue,
# compile the .mo the app loads. Usage: bash scripts/i18n.sh [extract|update|compile|all]
set -euo pipefail
cd "$(dirname "$0")/.."
pot=build/messages.pot
dir=lti_tool/web/translations
step="${1:-all}"
extract() {
  mkdir -p build
  pybabel -q extract -F babel.cfg -k lazy_gettext -k _l --sort-by-file --no-wrap \
    --project lti-microcredentials -o "$pot" lti_tool >/dev/null
}
update() {
  if [ -f "$dir/tr/LC_MESSAGES/messages.po" ]; then
    pybabel -q update -i "$pot" -d "$dir" -l tr --no-wrap --ignore-obsolete >/dev/null
  else
    pybabel -q init -i "$pot" -d "$dir" -l tr --no-wrap >/dev/null
  fi
}
compile() { pybabel compile -d "$dir" --statistics; }
case "$step" in
  extract) extract ;;
  update) extract; update ;;
  compile) compile ;;
  all) extract; update; compile ;;
  *) echo "usage: $0 [extract|update|compile|all]" >&2; exit 2 ;;
esac
