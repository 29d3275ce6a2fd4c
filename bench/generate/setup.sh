#!/usr/bin/env bash
# distilabel (pinned), only for bench:generate's comparison, in ~/.cache/distillery/bench-venv-distilabel.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/../../infra/bench-venv.sh" bench-venv-distilabel "$here/requirements.txt" >/dev/null
