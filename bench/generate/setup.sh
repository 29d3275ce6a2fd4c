#!/usr/bin/env bash
# Installs distilabel into its own venv for bench:generate (idempotent). The bench skips distilabel if this fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${DISTILLERY_CACHE:-$HOME/.cache/distillery}/bench-venv-distilabel"
stamp="$venv/.stamp"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then exit 0; fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
echo "$want" > "$stamp"
