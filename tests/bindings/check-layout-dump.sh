#!/usr/bin/env bash
# layout-dump names everything <weightbus/weightbus.h> declares — every constant, struct and field, and every
# non-zero value of each ..._INIT macro — so that no header change escapes the bindings' layout tests.
# usage: check-layout-dump.sh HEADER LAYOUT_DUMP
set -euo pipefail
header=$1
dump=$("$2")
missing=0

expect() {  # expect PREFIX: a line of the dump starts with PREFIX and a space
  grep -q "^$1 " <<<"$dump" && return
  echo "FAIL: layout-dump.c does not print '$1'"
  missing=$((missing + 1))
}

# Object-like WB_ macros, as the preprocessor sees them (function-like ones carry "(" in their name).
macros=$(cc -dM -E -x c "$header" | awk '$1 == "#define" && $2 ~ /^WB_[A-Z0-9_]+$/ && $2 != "WB_API"')
for name in $(awk '$2 !~ /_INIT$/ {print $2}' <<<"$macros"); do expect "const $name"; done

for name in $(grep -oE '\bWB_[A-Z0-9_]+ = ' "$header" | awk '{print $1}'); do expect "const $name"; done

# The error codes: the entries XX(NAME, VALUE, "text") of WB_ERROR_MAP.
for name in $(grep -oE '\bXX\(WB_[A-Z0-9_]+,' "$header" | sed 's/^XX(//; s/,$//'); do expect "const $name"; done

# "type" for each struct, "type field" for each of its fields (comment lines inside a struct skipped).
fields=$(awk '
  /^typedef struct wb_[a-z_]+ \{/ { type = $3; print type; next }
  type != "" && /^\}/ { type = ""; next }
  type != "" && $1 !~ /^(\/\*|\*)/ && match($0, /[a-z_0-9]+(\[[^;]*\])?;/) {
    field = substr($0, RSTART, RLENGTH); sub(/[\[;].*/, "", field); print type, field
  }' "$header")
while read -r type field; do
  if [ -z "$field" ]; then expect "size $type"; else expect "offset $type.$field"; fi
done <<<"$fields"

# Each ..._INIT macro: struct_size and every other non-zero initializer appear as "init" lines.
while read -r _ name body; do
  type=$(tr 'A-Z' 'a-z' <<<"${name%_INIT}")
  expect "init $type.struct_size"
  body=${body#\{}
  nonzero=$(tr ',' '\n' <<<"${body%\}}" | awk '{ gsub(/ /, "") } $0 != "0" && $0 != "NULL" && $0 != "{0}"' | wc -l)
  printed=$(grep -c "^init $type\." <<<"$dump" || true)
  if [ "$nonzero" -ne "$printed" ]; then
    echo "FAIL: $name has $nonzero non-zero initializers, layout-dump.c prints $printed"
    missing=$((missing + 1))
  fi
done < <(grep '_INIT ' <<<"$macros")

if [ "$missing" -ne 0 ]; then
  echo "update tests/bindings/layout-dump.c, then the Rust and Go bindings it checks"
  exit 1
fi
echo "layout-dump covers the header: $(wc -l <<<"$dump") facts"
