#!/usr/bin/env bash
# Creates the Python venv of the verifier benchmark (math-verify, pinned) under ~/.cache/distillery/bench-venv.
# Idempotent: does nothing when the venv already has exactly these requirements.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${DISTILLERY_CACHE:-$HOME/.cache/distillery}"
venv="$cache/bench-venv"
python="${PYTHON:-python3}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
mkdir -p "$cache"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "$want" > "$stamp"
echo "bench venv ready: $venv" >&2
