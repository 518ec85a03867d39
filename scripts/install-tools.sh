#!/usr/bin/env bash
# Installs the pinned third-party clients and registries that the tests drive.
#
#   scripts/install-tools.sh            all of them
#   scripts/install-tools.sh oras crane only those named
#
# Each binary lands in $TOOLS_BIN (default .tools/bin); a binary already there at the pinned version is
# kept. Built binaries are also copied to a per-user cache ($BERTH_TOOLS_CACHE, default
# ~/.cache/berth-tools) keyed by module@version, so a fresh clone on the same machine (CI) copies them
# instead of building again (cosign alone takes ~5 min on 2 cores). Everything comes from the Go module
# proxy; GOTOOLCHAIN=local keeps the go command from trying to fetch another toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS_BIN=${TOOLS_BIN:-$(pwd)/.tools/bin}
CACHE=${BERTH_TOOLS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/berth-tools}
mkdir -p "$TOOLS_BIN" "$CACHE"
export GOBIN="$TOOLS_BIN" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

# name|module@version|package path (for go install)
TOOLS=(
  "oras|oras.land/oras@v1.3.6|oras.land/oras/cmd/oras@v1.3.6"
  "crane|github.com/google/go-containerregistry@v0.22.1|github.com/google/go-containerregistry/cmd/crane@v0.22.1"
  "cosign|github.com/sigstore/cosign/v3@v3.1.3|github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3"
  "conformance|github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111|github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111"
  "registry|github.com/distribution/distribution/v3@v3.1.2|github.com/distribution/distribution/v3/cmd/registry@v3.1.2"
  "golangci-lint|github.com/golangci/golangci-lint/v2@v2.15.0|github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0"
  "versitygw|github.com/versity/versitygw@v1.8.0|github.com/versity/versitygw/cmd/versitygw@v1.8.0"
)
NOTATION_MOD=github.com/notaryproject/notation@v1.3.2
KNOWN="oras crane cosign conformance registry golangci-lint versitygw notation"

want=("$@")
for w in "${want[@]}"; do
  case " $KNOWN " in *" $w "*) ;; *) echo "install-tools: unknown tool $w (known: $KNOWN)" >&2; exit 2 ;; esac
done
selected() { [ ${#want[@]} -eq 0 ] && return 0; for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

# One installer at a time per TOOLS_BIN (make -j, or two stages asking for the same tool).
if command -v flock >/dev/null; then
  exec 9>"$TOOLS_BIN/.lock"
  flock 9
fi

tmpdirs=()
cleanup() { [ ${#tmpdirs[@]} -eq 0 ] || rm -rf "${tmpdirs[@]}"; }
trap cleanup EXIT

# current NAME MOD: the installed binary is at the pinned version.
current() { [ -x "$TOOLS_BIN/$1" ] && [ "$(cat "$TOOLS_BIN/.$1.version" 2>/dev/null)" = "$2" ]; }
cache_key() { printf '%s/%s-%s' "$CACHE" "$1" "$(printf '%s' "$2" | tr '/@' '__')"; }
cached() { [ -x "$(cache_key "$1" "$2")" ]; }
# from_cache NAME MOD: copy a cached build in; fails when there is none.
from_cache() {
  local c; c=$(cache_key "$1" "$2")
  [ -x "$c" ] || return 1
  cp "$c" "$TOOLS_BIN/$1.tmp" && mv "$TOOLS_BIN/$1.tmp" "$TOOLS_BIN/$1"
  echo "$2" >"$TOOLS_BIN/.$1.version"
  echo "install-tools: $1 ($2) from cache" >&2
}
# to_cache NAME MOD: remember a fresh build (best effort).
to_cache() {
  local c; c=$(cache_key "$1" "$2")
  { cp "$TOOLS_BIN/$1" "$c.tmp" && mv "$c.tmp" "$c"; } 2>/dev/null || true
}

for t in "${TOOLS[@]}"; do
  IFS='|' read -r name mod pkg <<<"$t"
  selected "$name" || continue
  if current "$name" "$mod"; then cached "$name" "$mod" || to_cache "$name" "$mod"; continue; fi
  from_cache "$name" "$mod" && continue
  echo "install-tools: building $name ($mod)" >&2
  go install "$pkg"
  echo "$mod" >"$TOOLS_BIN/.$name.version"
  to_cache "$name" "$mod"
done

# notation: the proxy refuses the version list that `go install` checks, so build from the module dir.
if selected notation && current notation "$NOTATION_MOD"; then
  cached notation "$NOTATION_MOD" || to_cache notation "$NOTATION_MOD"
elif selected notation && ! from_cache notation "$NOTATION_MOD"; then
  echo "install-tools: building notation ($NOTATION_MOD)" >&2
  scratch=$(mktemp -d) work=$(mktemp -d)
  tmpdirs+=("$scratch" "$work")
  dir=$(cd "$scratch" && go mod download -json "$NOTATION_MOD" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "install-tools: go mod download $NOTATION_MOD gave no Dir" >&2; exit 1; }
  cp -r "$dir"/. "$work"/ && chmod -R u+w "$work"
  (cd "$work" && go build -o "$TOOLS_BIN/notation" ./cmd/notation)
  echo "$NOTATION_MOD" >"$TOOLS_BIN/.notation.version"
  to_cache notation "$NOTATION_MOD"
fi
