#!/usr/bin/env bash
# Every file the CLI reads or writes must be a regular file: a FIFO is refused at once instead of blocking the
# command forever on its other end, and so are a device, a socket and a directory, each named with its type.
# A symbolic link to a regular file is followed (a Hugging Face cache is made of them).
set -uo pipefail
source "$(dirname "$0")/cli-test.sh" "$1" "$2" nonregular-test
# A regression would hang on the FIFO: bound every command so the test fails instead.
w() { timeout 20 "$cli" "$@"; }

$fixture model "$dir/model.safetensors" 1
mkfifo "$dir/fifo.safetensors" "$dir/spec.json"
check "load of a FIFO" 1 w load "$dir/fifo.safetensors" --topic t
expect_err "$dir/fifo.safetensors is a FIFO, not a regular file"
check "load of /dev/zero" 1 w load /dev/zero --topic t
expect_err "/dev/zero is a character device, not a regular file"
/usr/bin/python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$dir/sock.safetensors"
check "load of a socket" 1 w load "$dir/sock.safetensors" --topic t
expect_err "is a socket, not a regular file"
mkdir "$dir/idx"
mkfifo "$dir/idx/model.safetensors.index.json"
check "load of a folder whose index is a FIFO" 1 w load "$dir/idx" --topic t
expect_err "model.safetensors.index.json is a FIFO, not a regular file"
check "nothing was published" 1 w ls t
expect_err "WB_E_NOT_FOUND"

ln -s "$dir/model.safetensors" "$dir/link.safetensors"
check "load through a symbolic link" 0 w load "$dir/link.safetensors" --topic policy
check "map with a FIFO as its spec" 1 w map --spec "$dir/spec.json" policy
expect_err "$dir/spec.json is a FIFO, not a regular file"

# checkpoint writes beside what is there and syncs into an existing file: a FIFO in its place is refused.
mkdir "$dir/ckpt"
mkfifo "$dir/ckpt/model.safetensors"
check "checkpoint over a FIFO" 1 w checkpoint policy --out "$dir/ckpt"
expect_err "$dir/ckpt/model.safetensors is a FIFO, not a regular file"
finish
