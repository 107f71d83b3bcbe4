#!/usr/bin/env bash
# actionlint over the GitHub workflows (called by .ci/run and by the ci workflow's lint job).
# Uses the dev extras' binary (.venv/bin/actionlint) or one on PATH; when shellcheck is
# installed, actionlint also checks every `run:` script with it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

if [ -x "$VENV/bin/actionlint" ]; then
  actionlint="$VENV/bin/actionlint"
elif command -v actionlint >/dev/null 2>&1; then
  actionlint=$(command -v actionlint)
else
  echo "actionlint: not installed (pip install -e '.[dev]', which make setup does)" >&2
  exit 1
fi

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ "${#workflows[@]}" -eq 0 ]; then
  echo "actionlint: no workflows to check"
  exit 0
fi
"$actionlint" "${workflows[@]}"
echo "actionlint: ${#workflows[@]} workflow(s) clean ($("$actionlint" -version | head -n 1))"
