/* No torn reads with R = 1: bytes change in place, so each update waits for every lease to drain and
 * acquires wait for the open update. 1 publisher, 4 readers, 10,000 versions. */
#define REPLICAS 1
#include "no-torn-reads-body.c"
