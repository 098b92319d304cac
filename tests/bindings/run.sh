#!/usr/bin/env bash
# The Rust and Go bindings against a CMake build: each package's tests (a private broker each, the layout
# comparison with layout-dump included), then the cross-language example. Needs cargo and go (dev.sh
# installs them); fetches nothing.
# usage: tests/bindings/run.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)

# Install the build into a prefix, so that both packages find the library the way users do: pkg-config.
prefix=$build/bindings-prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
pc_dir=$(dirname "$(find "$prefix" -name weightbus.pc)")
lib_dir=$(PKG_CONFIG_PATH=$pc_dir pkg-config --variable=libdir weightbus)
export PKG_CONFIG_PATH=$pc_dir
export WEIGHTBUSD=$build/broker/weightbusd
export WEIGHTBUS_LAYOUT=$build/tests/bindings/layout-dump
export CARGO_TARGET_DIR=$build/bindings-cargo
export GOCACHE=$build/bindings-go-cache GOPROXY=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local
export CGO_LDFLAGS="-g -O2 -Wl,-rpath,$lib_dir" # build.rs does the same for Rust

echo "bindings: Rust ($(cargo --version))"
(cd "$root/bindings/rust" && timeout 600 cargo test --offline && timeout 300 cargo build --offline --example cross_language)

echo "bindings: Go ($(go version))"
go_programs=$build/bindings-go-bin
(cd "$root/bindings/go" && timeout 600 go test -count=1 ./... &&
  timeout 300 go build -o "$go_programs/crosslanguage" ./examples/crosslanguage)

echo "bindings: Rust and Go through one broker"
timeout 180 "$root/tests/bindings/cross-language.sh" "$WEIGHTBUSD" "$build/tools/weightbus/weightbus" \
  "$CARGO_TARGET_DIR/debug/examples/cross_language" "$go_programs/crosslanguage"
