#!/usr/bin/env bash
# Installs the pinned third-party clients and registries that the tests drive.
# Each binary lands in $TOOLS_BIN; a binary already there at the pinned version is kept.
set -euo pipefail
TOOLS_BIN=${TOOLS_BIN:-$(pwd)/.tools/bin}
mkdir -p "$TOOLS_BIN"
export GOBIN="$TOOLS_BIN" GOFLAGS=-buildvcs=false

# name|module@version|package path (for go install)
TOOLS=(
  "oras|oras.land/oras@v1.3.6|oras.land/oras/cmd/oras@v1.3.6"
  "crane|github.com/google/go-containerregistry@v0.22.1|github.com/google/go-containerregistry/cmd/crane@v0.22.1"
  "cosign|github.com/sigstore/cosign/v3@v3.1.3|github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3"
  "conformance|github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111|github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111"
  "registry|github.com/distribution/distribution/v3@v3.1.2|github.com/distribution/distribution/v3/cmd/registry@v3.1.2"
  "golangci-lint|github.com/golangci/golangci-lint/v2@v2.15.0|github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0"
)

want=("$@")
selected() { [ ${#want[@]} -eq 0 ] && return 0; for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

for t in "${TOOLS[@]}"; do
  IFS='|' read -r name mod pkg <<<"$t"
  selected "$name" || continue
  stamp="$TOOLS_BIN/.$name.version"
  if [ -x "$TOOLS_BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$mod" ]; then continue; fi
  echo "installing $name ($mod)" >&2
  go install "$pkg"
  echo "$mod" >"$stamp"
done

# notation: the proxy refuses the version list that `go install` checks, so build from the module dir.
if selected notation; then
  mod=github.com/notaryproject/notation@v1.3.2
  stamp="$TOOLS_BIN/.notation.version"
  if ! [ -x "$TOOLS_BIN/notation" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$mod" ]; then
    echo "installing notation ($mod)" >&2
    dir=$(cd "$(mktemp -d)" && go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    work=$(mktemp -d)
    cp -r "$dir"/. "$work"/ && chmod -R u+w "$work"
    (cd "$work" && go build -o "$TOOLS_BIN/notation" ./cmd/notation)
    rm -rf "$work"
    echo "$mod" >"$stamp"
  fi
fi
