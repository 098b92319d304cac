#!/usr/bin/env bash
# The Debian packages, installed on this machine and removed again (dev.sh test runs it; CI runs as root):
#   bash tests/packaging/run.sh BUILD
# builds libweightbus0, libweightbus-dev and weightbus with CPack from the build folder BUILD, installs them
# with dpkg -i, and checks what a user of each gets: the demo of the installed programs (/usr/bin/weightbus
# starts /usr/bin/weightbusd), a program compiled against the installed header with pkg-config and with
# find_package, the man pages, the systemd units (systemd-analyze verify, where systemd is installed), the
# system uid, the license in each package; then dpkg -r leaves none of their files. It needs root (dpkg):
# without it, or where weightbus packages are installed already (they are not replaced), it says so and exits 0.
set -uo pipefail
build=$(cd "${1:?usage: run.sh BUILD}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../helpers/check.sh"
packages=(libweightbus0 libweightbus-dev weightbus)
if [ "$(id -u)" != 0 ]; then
  echo "skipped: installing the Debian packages needs root (dpkg -i); CI runs as root"
  exit 0
fi
for p in "${packages[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    echo "skipped: $p is installed on this machine already; this test does not replace it"
    exit 0
  fi
done
dir=$(mktemp -d)
name=pkg-$$
clean_up() {
  /usr/bin/weightbus --name "$name" stop --remove >/dev/null 2>&1
  dpkg -r "${packages[@]}" >/dev/null 2>&1
  rm -rf "$dir"
}
trap clean_up EXIT

check "cpack -G DEB" 0 cpack -G DEB -B "$dir/deb" --config "$build/CPackConfig.cmake"
debs=()
for p in "${packages[@]}"; do debs+=("$dir/deb/${p}_"*.deb); done
check "dpkg -i of the three packages" 0 dpkg -i "${debs[@]}"
for p in "${packages[@]}"; do
  [ -s "/usr/share/doc/$p/copyright" ] && grep -q "Apache License" "/usr/share/doc/$p/copyright" &&
    passed=$((passed + 1)) || fail "$p carries no license in /usr/share/doc/$p/copyright"
done

# The daemon package: its programs, from any directory, the demo, a broker started by hand.
cd "$dir"
check "the installed demo" 0 /usr/bin/weightbus demo --versions 3
expect_out "version 3"
check "an installed broker" 0 /usr/bin/weightbusd --name "$name"
check "ls against it" 0 /usr/bin/weightbus --name "$name" ls
check "stop --remove" 0 /usr/bin/weightbus --name "$name" stop --remove
for page in man8/weightbusd.8 man1/weightbus.1 man1/weightbus-stop.1 man1/weightbus-load.1; do
  [ -s "/usr/share/man/$page" ] && passed=$((passed + 1)) || fail "no man page /usr/share/man/$page"
done
check "weightbusd(8) is weightbusd --help" 0 grep -qF -- "on\\-stop" /usr/share/man/man8/weightbusd.8
getent passwd weightbus >/dev/null && passed=$((passed + 1)) || fail "the postinst made no uid weightbus"
if command -v systemd-analyze >/dev/null; then
  for unit in system/weightbusd.service user/weightbusd.service user/weightbusd.socket; do
    # --man=no: the man pages the units name are checked above; man itself is not on a minimal system.
    check "systemd-analyze verify $unit" 0 systemd-analyze verify --man=no "/usr/lib/systemd/$unit"
  done
else
  echo "skipped: systemd-analyze verify of the units (no systemd on this machine)"
fi

# The development package: a program built against the installed header and library, both ways.
cat > "$dir/hello.c" <<'C'
#include <stdio.h>
#include <weightbus/weightbus.h>
int main(void) { printf("libweightbus %s\n", wb_version_string()); return 0; }
C
check "cc with pkg-config" 0 sh -c "cc -o '$dir/hello' '$dir/hello.c' \$(pkg-config --cflags --libs weightbus)"
check "it runs" 0 "$dir/hello"
expect_out "libweightbus 0."
mkdir "$dir/cmake"
cat > "$dir/cmake/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(hello C)
find_package(weightbus REQUIRED)
add_executable(hello ../hello.c)
target_link_libraries(hello PRIVATE weightbus::weightbus)
CMAKE
check "find_package(weightbus)" 0 sh -c "cmake -S '$dir/cmake' -B '$dir/cmake/build' && cmake --build '$dir/cmake/build'"
check "it runs" 0 "$dir/cmake/build/hello"

# dpkg -r: no file of the packages is left.
files=$(dpkg -L "${packages[@]}" 2>/dev/null | sort -u)
check "dpkg -r" 0 dpkg -r "${packages[@]}"
left=0
while read -r f; do
  [ -f "$f" ] || [ -L "$f" ] && { echo "left behind: $f"; left=1; }
done <<< "$files"
[ $left = 0 ] && passed=$((passed + 1)) || fail "dpkg -r left files behind"
finish
