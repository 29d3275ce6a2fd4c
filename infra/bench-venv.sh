#!/usr/bin/env bash
# Makes (or reuses) a Python venv for a benchmark's reference tool: infra/bench-venv.sh NAME REQUIREMENTS.txt
# → ~/.cache/distillery/NAME. Idempotent: rebuilt only when the pinned requirements change. Prints the venv path.
set -euo pipefail
name="$1"
requirements="$2"
cache="${DISTILLERY_CACHE:-$HOME/.cache/distillery}"
venv="$cache/$name"
python="${PYTHON:-python3}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ ! ( -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ) ]]; then
  mkdir -p "$cache"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
  echo "venv ready: $venv" >&2
fi
echo "$venv"
