#!/usr/bin/env bash
# The two Quick start commands of README.md, and what CI runs.
#   bash dev.sh demo   install what the demo needs (apt), build the broker and the CLI, show versions flowing
#   bash dev.sh test   install what is missing, build with warnings as errors, and run every test (plain,
#                      without CUDA's headers, the Rust and Go bindings, ASan/UBSan, ThreadSanitizer), then each
#                      libFuzzer harness for 30 s
#   bash dev.sh bench  install what is missing, build (Release) and run bench/run.sh
# Each step prints a "dev.sh:" line, and apt, cmake and the build print their progress as plain lines that read
# well in a CI log.
set -euo pipefail
cd "$(dirname "$0")"

# The library, the broker and the CLI: all the demo needs.
DEMO_PACKAGES=(build-essential cmake pkg-config libuv1-dev libflatbuffers-dev flatbuffers-compiler libboost-dev
               nlohmann-json3-dev libdlpack-dev libsystemd-dev)
# The test suite's build adds cmocka and help2man (the man pages); the benchmarks are built with it.
BUILD_PACKAGES=("${DEMO_PACKAGES[@]}" libcmocka-dev help2man)
# Only the tests need these: spin (the protocol model), Go and Rust (the bindings), clang and its sanitizer
# runtimes (the libFuzzer harnesses), Debian's Python with pytest, NumPy, pip, venv, flit (the binding's build
# backend) and PyTorch (CPU) for the Python binding, prometheus-client's parser (the metrics), and file (CPack's
# Debian packages ask it which files are programs).
TEST_PACKAGES=(spin golang-go clang libclang-rt-dev python3-pytest python3-numpy python3-pip python3-venv flit
               python3-torch python3-prometheus-client file)
# The benchmarks' comparisons and plots (bash dev.sh bench).
BENCH_PACKAGES=(python3-numpy python3-matplotlib python3-fastapi python3-uvicorn python3-requests)
# Rust for bindings/rust: rustup's toolchain when there is one, else Debian's.
[ -x "${HOME:-}/.cargo/bin/cargo" ] && export PATH=$HOME/.cargo/bin:$PATH
command -v cargo >/dev/null || TEST_PACKAGES+=(cargo)
JOBS=$(nproc)

# step TEXT: the line that starts a step, with the time, so that a log shows where the minutes went.
step() { echo "dev.sh [$(date +%H:%M:%S)]: $*"; }

# install_missing PACKAGE...: apt-get with a line per package fetched and set up (-q: no progress bars).
install_missing() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  step "installing ${missing[*]} (apt-get)"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q -o Dpkg::Progress-Fancy=0 "${missing[@]}"
}

# Extra cmake arguments of every build configured: dev.sh test (CI) adds warnings as errors.
CONFIGURE_ARGS=()

# configure DIR [cmake args...]: cmake's output, whose summary says what this build has ("CUDA tensors: on").
configure() {
  local dir=$1
  shift
  step "configuring $dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${CONFIGURE_ARGS[@]}" "$@"
}

# build DIR [cmake args...]: configures and builds everything.
build() {
  configure "$@"
  step "building $1"
  cmake --build "$1" -j "$JOBS"
}

# What a plain Debian machine builds: cmake does not see /usr/local/cuda.
NO_CUDA=(-DCMAKE_IGNORE_PATH="/usr/local/cuda/include;/usr/local/cuda/bin;/usr/local/cuda")

case "${1:-}" in
  demo)
    install_missing "${DEMO_PACKAGES[@]}"
    configure build -DWB_BUILD_TESTS=OFF
    step "building the broker and the CLI"
    cmake --build build -j "$JOBS" --target weightbusd weightbus_cli
    step "running weightbus demo"
    exec build/tools/weightbus/weightbus demo
    ;;
  test)
    install_missing "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    # CI's builds, every one of them: a new warning fails CI, never a user's build (WB_WERROR is off there).
    CONFIGURE_ARGS=(-DWB_WERROR=ON)
    build build -DWB_BUILD_TESTS=ON
    step "the test suite (build)"
    ctest --test-dir build --output-on-failure -j "$JOBS"
    step "the Debian packages: built, installed, used and removed (tests/packaging/run.sh)"
    bash tests/packaging/run.sh build
    # Where cmake found no cuda.h (a plain Debian machine), the plain build is that build already.
    if grep -q '^WB_CUDA_INCLUDE_DIR:PATH=.*NOTFOUND' build/CMakeCache.txt; then
      step "the plain build has no CUDA headers: it was the build without CUDA"
    else
      build build-nocuda -DWB_BUILD_TESTS=ON "${NO_CUDA[@]}"
      # The model check is of the protocol's Promela model, which no build changes: the plain run checked it.
      step "the test suite without CUDA's headers (build-nocuda), what a plain Debian machine builds"
      ctest --test-dir build-nocuda --output-on-failure -j "$JOBS" -E protocol-model-check
    fi
    step "the Rust and Go bindings"
    timeout 1800 bash tests/bindings/run.sh build
    build build-asan -DWB_BUILD_TESTS=ON -DWB_SANITIZE=ON
    step "the same tests under AddressSanitizer and UndefinedBehaviorSanitizer (build-asan)"
    ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j "$JOBS"
    build build-tsan -DWB_BUILD_TESTS=ON -DWB_TSAN=ON
    step "the same tests under ThreadSanitizer (build-tsan; without the model check, the bindings and the stress tests)"
    # The stress tests run publisher and readers as processes, whose shared-memory accesses TSan cannot see,
    # and require a reading rate that its slowdown breaks; test-publisher-and-readers-can-be-threads-of-one-
    # process gives TSan the protocol instead.
    TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -j "$JOBS" -LE stress
    CC=clang CXX=clang++ build build-fuzz -DWB_FUZZ=ON -DWB_BUILD_TESTS=OFF
    step "the libFuzzer harnesses (clang), 30 s each"
    bash tests/fuzz/run.sh build-fuzz 30
    step "all tests passed"
    ;;
  bench)
    install_missing "${BUILD_PACKAGES[@]}" "${BENCH_PACKAGES[@]}"
    build build-bench -DWB_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Release
    step "the benchmarks (bench/run.sh)"
    PYTHON=/usr/bin/python3 exec bash bench/run.sh build-bench
    ;;
  *)
    echo "usage: bash dev.sh demo|test|bench" >&2
    exit 2
    ;;
esac
