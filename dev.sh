#!/usr/bin/env bash
# The two Quick start commands of README.md, and what CI runs.
#   bash dev.sh demo   install what is missing (apt), build, start a broker and show versions flowing
#   bash dev.sh test   install what is missing, build, and run every test (plain, the Rust and Go bindings,
#                      ASan/UBSan, ThreadSanitizer), then each libFuzzer harness for 30 s
#   bash dev.sh bench  install what is missing, build (Release) and run bench/run.sh
set -euo pipefail
cd "$(dirname "$0")"

BUILD_PACKAGES=(build-essential cmake pkg-config libuv1-dev libflatbuffers-dev flatbuffers-compiler libboost-dev
                nlohmann-json3-dev libcmocka-dev libdlpack-dev)
# Only the tests need these: spin (the protocol model), Go and Rust (the bindings), clang and its sanitizer
# runtimes (the libFuzzer harnesses), and Debian's Python with pytest, NumPy, pip and PyTorch (CPU) for the
# Python binding.
TEST_PACKAGES=(spin golang-go clang libclang-rt-dev python3-pytest python3-numpy python3-pip python3-torch)
# The benchmarks' comparisons and plots (bash dev.sh bench).
BENCH_PACKAGES=(python3-numpy python3-matplotlib python3-fastapi python3-uvicorn python3-requests)
# Rust for bindings/rust: rustup's toolchain when there is one, else Debian's.
[ -x "${HOME:-}/.cargo/bin/cargo" ] && export PATH=$HOME/.cargo/bin:$PATH
command -v cargo >/dev/null || TEST_PACKAGES+=(cargo)
JOBS=$(nproc)

# install_missing PACKAGE...
install_missing() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  echo "dev.sh: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# build DIR [cmake args...]
build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
}

case "${1:-}" in
  demo)
    install_missing "${BUILD_PACKAGES[@]}"
    build build
    exec build/tools/weightbus/weightbus demo
    ;;
  test)
    install_missing "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    build build
    ctest --test-dir build --output-on-failure -j "$JOBS"
    echo "dev.sh: the Rust and Go bindings"
    timeout 1800 bash tests/bindings/run.sh build
    echo "dev.sh: the same tests under AddressSanitizer and UndefinedBehaviorSanitizer"
    build build-asan -DWB_SANITIZE=ON
    ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j "$JOBS"
    echo "dev.sh: the same tests under ThreadSanitizer (without the model check, the bindings and the stress tests)"
    build build-tsan -DWB_TSAN=ON
    # The stress tests run publisher and readers as processes, whose shared-memory accesses TSan cannot see,
    # and require a reading rate that its slowdown breaks; test-publisher-and-readers-can-be-threads-of-one-
    # process gives TSan the protocol instead.
    TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -j "$JOBS" -LE stress
    echo "dev.sh: the libFuzzer harnesses (clang), 30 s each"
    CC=clang CXX=clang++ build build-fuzz -DWB_FUZZ=ON -DWB_BUILD_TESTS=OFF
    bash tests/fuzz/run.sh build-fuzz 30
    ;;
  bench)
    install_missing "${BUILD_PACKAGES[@]}" "${BENCH_PACKAGES[@]}"
    build build-bench -DCMAKE_BUILD_TYPE=Release
    PYTHON=/usr/bin/python3 exec bash bench/run.sh build-bench
    ;;
  *)
    echo "usage: bash dev.sh demo|test|bench" >&2
    exit 2
    ;;
esac
