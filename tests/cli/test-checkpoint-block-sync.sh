#!/usr/bin/env bash
# weightbus checkpoint over an existing checkpoint: only changed blocks are written (counted in --json), an
# unchanged version writes nothing, another header rewrites the file; and the redo journal: a complete one
# (written here by hand, as a crash leaves it) is replayed by load and checkpoint, an incomplete or damaged
# one is discarded without touching the file, one for another file size is refused.
set -uo pipefail
source "$(dirname "$0")/cli-test.sh" "$1" "$2" sync-test

$fixture model "$dir/v1.safetensors" 1
out=$dir/ckpt
file=$out/model.safetensors
size=$(stat -c %s "$dir/v1.safetensors")
header=$((8 + $(/usr/bin/python3 -c 'import struct,sys; print(struct.unpack("<Q", open(sys.argv[1],"rb").read(8))[0])' "$dir/v1.safetensors")))
data=$((size - header))

check "load v1" 0 w load "$dir/v1.safetensors" --topic policy
check "first checkpoint" 0 w checkpoint policy --out "$out" --json
expect_json "created" 'd["files"][0]["action"] == "created" and d["bytes_written"] == '$size

# The same version again: every data byte compared, nothing written.
check "unchanged" 0 w checkpoint policy --out "$out" --json
expect_json "nothing written" 'd["files"][0]["action"] == "unchanged" and d["bytes_written"] == 0 and d["bytes_compared"] == '$data

# One byte changed (a training step): one 4 KiB block written.
cp "$dir/v1.safetensors" "$dir/v2.safetensors"
$fixture poke "$dir/v2.safetensors" $((header + 8200))
check "load v2" 0 w load "$dir/v2.safetensors" --topic policy
check "sync one block" 0 w checkpoint policy --out "$out" --json
expect_json "one block" 'd["files"][0]["action"] == "synced" and d["bytes_written"] == 4096 and d["bytes_compared"] == '$data
expect_json "journaled" 'd["journal_bytes"] > 4096'
cmp "$file" "$dir/v2.safetensors" && passed=$((passed + 1)) || fail "the synced file is not version 2"
[ ! -e "$file.wbjournal" ] && passed=$((passed + 1)) || fail "the journal was left behind"

# Two bytes far apart: two blocks; a block straddling the header's end is compared from the header's end.
cp "$dir/v2.safetensors" "$dir/v3.safetensors"
$fixture poke "$dir/v3.safetensors" $((header + 1))
$fixture poke "$dir/v3.safetensors" $((size - 1))
check "load v3" 0 w load "$dir/v3.safetensors" --topic policy
check "sync two blocks" 0 w checkpoint policy --out "$out" --json
first_block=$(( (header / 4096 + 1) * 4096 - header ))
last_block=$(( size - (size - 1) / 4096 * 4096 ))
expect_json "two partial blocks" 'd["bytes_written"] == '$((first_block + last_block))
cmp "$file" "$dir/v3.safetensors" && passed=$((passed + 1)) || fail "the synced file is not version 3"

# Smaller blocks write less.
cp "$dir/v3.safetensors" "$dir/v4.safetensors"
$fixture poke "$dir/v4.safetensors" $((header + 9000))
check "load v4" 0 w load "$dir/v4.safetensors" --topic policy
check "sync with 512-byte blocks" 0 w checkpoint policy --out "$out" --block-size 512 --json
expect_json "one 512-byte block" 'd["bytes_written"] == 512'
check "the previous version by number" 0 w checkpoint policy --out "$dir/old" --version 3
cmp "$dir/old/model.safetensors" "$dir/v3.safetensors" && passed=$((passed + 1)) || fail "--version 3 is not version 3"
check "a version no longer kept" 1 w checkpoint policy --out "$dir/old" --version 2
expect_err "WB_E_EXPIRED"

# Another header (metadata "pt" -> "PT", same size): the file is rewritten whole, atomically.
/usr/bin/python3 -c 'import sys; p=sys.argv[1]; b=open(p,"rb").read(); open(sys.argv[2],"wb").write(b.replace(b"\"pt\"", b"\"PT\"", 1))' \
  "$dir/v4.safetensors" "$dir/v5.safetensors"
check "load v5" 0 w load "$dir/v5.safetensors" --topic policy
check "rewrite on another header" 0 w checkpoint policy --out "$out" --json
expect_json "rewritten" 'd["files"][0]["action"] == "rewritten" and d["bytes_written"] == '$size
cmp "$file" "$dir/v5.safetensors" && passed=$((passed + 1)) || fail "the rewritten file is not version 5"

# A complete journal (a crash after the journal was made durable): load finishes the sync first.
$fixture journal "$file" $((header + 100)) 300 complete
check "load replays a complete journal" 0 w load "$file" --topic replayed
expect_err "finished an interrupted sync from its journal"
cmp "$file" "$file.expected" && passed=$((passed + 1)) || fail "the replayed file is not the journal's content"
[ ! -e "$file.wbjournal" ] && passed=$((passed + 1)) || fail "the replayed journal was left behind"
check "what load read is the replayed content" 0 w checkpoint replayed --out "$dir/replayed"
cmp "$dir/replayed/model.safetensors" "$file.expected" && passed=$((passed + 1)) || fail "load read the file before replaying"
rm "$file.expected"

# checkpoint replays too, then syncs to the version (which undoes the journal's bytes again).
$fixture journal "$file" $((header + 100)) 300 complete
check "checkpoint replays a complete journal" 0 w checkpoint replayed --out "$out" --json
expect_json "reported" 'len(d["recovered"]) == 1 and "finished an interrupted sync" in d["recovered"][0]'
rm "$file.expected"

# An incomplete journal (a crash while it was written): the file was not touched, the journal goes away.
cp "$file" "$dir/before"
$fixture journal "$file" $((header + 100)) 300 incomplete
check "load discards an incomplete journal" 0 w load "$file" --topic discarded
expect_err "discarded the incomplete journal"
cmp "$file" "$dir/before" && passed=$((passed + 1)) || fail "an incomplete journal changed the file"
[ ! -e "$file.wbjournal" ] && passed=$((passed + 1)) || fail "the incomplete journal was left behind"
$fixture journal "$file" $((header + 100)) 300 bad-checksum
check "a damaged journal is discarded" 0 w checkpoint replayed --out "$out" --json
expect_json "discarded" 'len(d["recovered"]) == 1 and "discarded" in d["recovered"][0]'
cmp "$file" "$dir/before" && passed=$((passed + 1)) || fail "a damaged journal changed the file"

# A complete journal for another file size: refused, both left for a person to look at.
$fixture journal "$file" $((header + 100)) 300 wrong-size
check "a journal of another size" 1 w load "$file" --topic x
expect_err "is a complete journal for a file of $((size + 1)) bytes"
[ -e "$file.wbjournal" ] && passed=$((passed + 1)) || fail "a mismatched journal was removed"
rm "$file.wbjournal"

# The temporary file of an interrupted rewrite is removed.
echo partial >"$out/model.safetensors.wbtmp"
check "leftover temporary file" 0 w checkpoint replayed --out "$out"
[ ! -e "$out/model.safetensors.wbtmp" ] && passed=$((passed + 1)) || fail "the .wbtmp file was left"
finish
