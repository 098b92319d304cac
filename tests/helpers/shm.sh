# Sourced by the shell tests that start brokers: what a stopped broker left in /dev/shm.
#   shm_clean NAME STATUS   removes the shared-memory objects of broker NAME (its segment /weightbus-<uid>-NAME
#                           and its host allocations, NAME.a<N>) still in /dev/shm. A broker killed with
#                           SIGKILL leaves them by design; one that exited with STATUS 0 (a clean stop) must
#                           not: then each is named as a leak of this test, and it returns 1.
shm_clean() {
  local name=$1 status=$2 leaked=0 object
  for object in "/dev/shm/weightbus-$(id -u)-$name" "/dev/shm/weightbus-$(id -u)-$name".a*; do
    [ -e "$object" ] || continue
    if [ "$status" -eq 0 ]; then
      echo "FAIL: $(basename "$0"): broker $name stopped cleanly but left $object behind"
      leaked=1
    fi
    rm -f "$object"
  done
  return $leaked
}
