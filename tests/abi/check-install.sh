#!/usr/bin/env bash
# `cmake --install` gives a prefix from which find_package(weightbus) and pkg-config both build a client.
set -euo pipefail
build=$1
source_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer"
libdir=$(dirname "$(find "$work/prefix" -name weightbus.pc)")
PKG_CONFIG_PATH=$libdir cc -std=c99 "$source_dir/consumer/consumer.c" $(PKG_CONFIG_PATH=$libdir pkg-config --cflags --libs weightbus) \
  -Wl,-rpath,"$(dirname "$libdir")" -o "$work/pc-consumer"
"$work/pc-consumer"
test -x "$work/prefix/bin/weightbusd"
test -f "$work/prefix/include/weightbus/weightbus.h"
echo "install: find_package and pkg-config consumers built and ran"
