/* A plan run finds which replica holds each shard of the version it reads: from one word per rank when the rank
 * wrote all of its shards into one replica (a full version), from each shard's words when it changed only some
 * (its unchanged shards keep an older version's replica). Two ranks, R = 2 and 3: rank 0 writes every shard of
 * every version, rank 1 a different subset each time (none, one, all); after each commit the plan's whole
 * logical tensors hold, rank by rank and element for element, the version that last wrote each shard. */
#include "sharded-versions.h"

#define RANKS 2
#define TENSORS 3
#define VERSIONS 12
#define ALL ((1u << TENSORS) - 1)

static const uint32_t kRank1Masks[] = {ALL, 0, 1, 2, ALL, 4, 0, 6, ALL, 1, 1, 2};

static void run_with_replicas(const fx_broker *b, uint32_t replicas, const char *model) {
  wb_client *c[RANKS], *reader;
  wb_topic *t[RANKS], *rt;
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(vx_join(b, model, r, RANKS, replicas, TENSORS, &c[r], &t[r]));
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(wb_topic_seal_rank(t[r], VX_TIMEOUT_MS));
  FX_OK(fx_attach(b, "reader", &reader));
  FX_OK(wb_topic_open(reader, model, &rt));

  static uint32_t out[TENSORS][RANKS * VX_ELEMS];
  wb_slice_dest dests[TENSORS];
  wb_slice_part parts[TENSORS];
  char names[TENSORS][8];
  for (uint32_t i = 0; i < TENSORS; ++i) {
    dests[i] = (wb_slice_dest)WB_SLICE_DEST_INIT;
    dests[i].first_part = i;
    dests[i].ndim = 2;
    dests[i].shape[0] = RANKS * VX_ROWS;
    dests[i].shape[1] = VX_COLS;
    dests[i].dtype = WB_DTYPE_U32;
    dests[i].dst = out[i];
    dests[i].dst_bytes = sizeof(out[i]);
    parts[i] = (wb_slice_part)WB_SLICE_PART_INIT;
    parts[i].ndim = 2;
    parts[i].name = vx_name(i, names[i]);
    parts[i].extent[0] = RANKS * VX_ROWS;
    parts[i].extent[1] = VX_COLS;
  }

  uint64_t last[RANKS][TENSORS] = {{0}};
  wb_plan *plan = NULL;
  for (uint32_t n = 0; n < VERSIONS; ++n) {
    uint32_t masks[RANKS] = {ALL, n == 0 ? ALL : kRank1Masks[n]};  /* the first version writes every shard */
    uint64_t v = 0;
    for (uint32_t r = 0; r < RANKS; ++r) FX_OK(vx_publish(t[r], r, masks[r], &v));
    FX_OK(vx_await_version(rt, v));
    for (uint32_t r = 0; r < RANKS; ++r) {
      for (uint32_t i = 0; i < TENSORS; ++i) last[r][i] = masks[r] & (1u << i) ? v : last[r][i];
    }
    if (plan == NULL) FX_OK(wb_plan_create(rt, dests, TENSORS, parts, TENSORS, &plan));
    wb_snapshot *s;
    FX_OK(wb_snapshot_acquire(rt, v, VX_TIMEOUT_MS, &s));
    FX_OK(wb_plan_run(plan, s, NULL));
    for (uint32_t i = 0; i < TENSORS; ++i) {
      for (uint32_t r = 0; r < RANKS; ++r) {
        int64_t bad = fx_check_u32(out[i] + r * VX_ELEMS, VX_ELEMS, last[r][i], vx_tag(i, r));
        if (bad >= 0) {
          fail_msg("R = %u, version %llu: rank %u's rows of t%u differ from version %llu's at element %lld", replicas,
                   (unsigned long long)v, r, i, (unsigned long long)last[r][i], (long long)bad);
        }
      }
    }
    FX_OK(wb_snapshot_release(s));
  }
  wb_plan_destroy(plan);
  for (uint32_t r = 0; r < RANKS; ++r) FX_OK(wb_detach(c[r]));
  FX_OK(wb_detach(reader));
}

static void two_replicas(void **state) { run_with_replicas(*state, 2, "model2"); }
static void three_replicas(void **state) { run_with_replicas(*state, 3, "model3"); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(two_replicas, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(three_replicas, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
