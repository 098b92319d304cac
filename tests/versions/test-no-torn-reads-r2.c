/* No torn reads with R = 2: each update writes the replica no lease pins while readers keep the latest, and
 * tensors a version leaves unchanged must be found in the replica that holds them. 1 publisher, 4 readers,
 * 10,000 versions. */
#define REPLICAS 2
#include "no-torn-reads-body.c"
