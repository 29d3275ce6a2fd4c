#!/usr/bin/env bash
# The verifier benchmark's reference, math-verify (pinned), in ~/.cache/distillery/bench-venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/../../infra/bench-venv.sh" bench-venv "$here/requirements.txt" >/dev/null
