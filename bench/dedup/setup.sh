#!/usr/bin/env bash
# The dedup benchmark's reference, datasketch (pinned), in ~/.cache/distillery/bench-venv-dedup.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/../../infra/bench-venv.sh" bench-venv-dedup "$here/requirements.txt" >/dev/null
