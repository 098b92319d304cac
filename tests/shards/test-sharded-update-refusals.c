/* What a sharded model refuses to updates and snapshots, each with a message naming what is wrong: a shard
 * number this rank does not hold and a logical tensor it holds no shard of (by name and by position:
 * WB_E_NOT_FOUND "rank 0 holds no shard of 'only1'"), wb_update_set_version (WB_E_STATE), metadata from rank 1
 * (WB_E_INVAL "metadata is rank 0's", the update stays open and publishes without it), wb_snapshot_tensor and
 * wb_snapshot_tensor_at of a logical tensor, and copy-into of it (WB_E_STATE "'t0' is sharded over 2 ranks"),
 * wb_snapshot_shard of a rank or number that holds none (WB_E_NOT_FOUND) or of a plain topic (WB_E_INVAL). On a
 * plain topic wb_update_shard writes a tensor as its only shard, number 0. */
#include "sharded-versions.h"

#define ALL 1u

/* Rank 1 also holds the whole of "only1" ([4, 8] u32), which rank 0 holds nothing of. */
static int add_only1(wb_topic *rank1) {
  wb_shard_spec spec = WB_SHARD_SPEC_INIT;
  spec.dtype = WB_DTYPE_U32;
  spec.name = "only1";
  spec.ndim = 2;
  spec.logical_shape[0] = spec.extent[0] = 4;
  spec.logical_shape[1] = spec.extent[1] = 8;
  return wb_shard_alloc(rank1, &spec, 1);
}

static void test_updates_and_snapshots_refuse_what_a_sharded_model_cannot_do(void **state) {
  const fx_broker *b = *state;
  wb_client *c0, *c1, *rc;
  wb_topic *rank0, *rank1, *reader;
  FX_OK(vx_join(b, "m", 0, 2, 2, 1, &c0, &rank0));
  FX_OK(vx_join(b, "m", 1, 2, 2, 1, &c1, &rank1));
  FX_OK(add_only1(rank1));
  FX_OK(wb_topic_seal_rank(rank1, VX_TIMEOUT_MS));

  wb_update *u;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_begin(rank0, VX_TIMEOUT_MS, &u));
  FX_EXPECT(wb_update_set_version(u, 7), WB_E_STATE);
  assert_non_null(strstr(wb_last_error(), "sharded over 2 ranks"));
  FX_EXPECT(wb_update_shard(u, "t0", 1, &info), WB_E_NOT_FOUND);
  assert_non_null(strstr(wb_last_error(), "rank 0 holds no shard 1 of 't0'"));
  FX_EXPECT(wb_update_tensor(u, "only1", &info), WB_E_NOT_FOUND);
  assert_non_null(strstr(wb_last_error(), "rank 0 holds no shard of 'only1'"));
  uint32_t count = 0, position = UINT32_MAX;
  FX_OK(wb_topic_tensor_count(rank0, &count));
  assert_int_equal(count, 2);
  for (uint32_t i = 0; i < count; ++i) {
    wb_tensor_info t = WB_TENSOR_INFO_INIT;
    FX_OK(wb_topic_tensor(rank0, i, &t));
    if (strcmp(t.name, "only1") == 0) position = i;
  }
  FX_EXPECT(wb_update_tensor_at(u, position, &info), WB_E_NOT_FOUND);
  assert_non_null(strstr(wb_last_error(), "rank 0 holds no shard of 'only1'"));
  FX_OK(wb_update_shard(u, "t0", 0, &info));
  assert_int_equal(info.shape[0], VX_ROWS);
  fx_fill_u32(info.data, VX_ELEMS, 1, vx_tag(0, 0));
  FX_OK(wb_update_publish(u, NULL, 0, NULL));

  uint64_t metadata = 1, v = 0;
  FX_OK(wb_update_begin(rank1, VX_TIMEOUT_MS, &u));
  FX_OK(vx_write(u, 1, ALL, 1));
  FX_OK(wb_update_tensor(u, "only1", &info));
  FX_EXPECT(wb_update_publish(u, &metadata, sizeof(metadata), &v), WB_E_INVAL);
  assert_non_null(strstr(wb_last_error(), "metadata is rank 0's"));
  FX_OK(wb_update_publish(u, NULL, 0, &v));
  assert_int_equal(v, 1);

  FX_OK(fx_attach(b, "reader", &rc));
  FX_OK(wb_topic_open(rc, "m", &reader));
  FX_OK(vx_await_version(reader, 1));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(reader, 0, VX_TIMEOUT_MS, &s));
  FX_EXPECT(wb_snapshot_tensor(s, "t0", &info), WB_E_STATE);
  assert_non_null(strstr(wb_last_error(), "'t0' is sharded over 2 ranks: use wb_plan_create or wb_snapshot_shard"));
  FX_EXPECT(wb_snapshot_tensor_at(s, 0, &info), WB_E_STATE);
  uint32_t dst[VX_ELEMS];
  wb_copy_target target = WB_COPY_TARGET_INIT;
  target.name = "t0";
  target.dst = dst;
  target.dst_bytes = sizeof(dst);
  FX_EXPECT(wb_snapshot_copy_into(s, &target, 1, NULL), WB_E_STATE);
  assert_non_null(strstr(wb_last_error(), "targets[0]"));
  assert_non_null(strstr(wb_last_error(), "'t0' is sharded over 2 ranks"));
  FX_EXPECT(wb_snapshot_shard(s, "t0", 2, 0, &info), WB_E_NOT_FOUND);
  FX_EXPECT(wb_snapshot_shard(s, "only1", 0, 0, &info), WB_E_NOT_FOUND);
  FX_EXPECT(wb_snapshot_shard(s, "t0", 0, 1, &info), WB_E_NOT_FOUND);
  FX_EXPECT(wb_snapshot_shard(s, "missing", 0, 0, &info), WB_E_NOT_FOUND);
  FX_EXPECT(wb_snapshot_shard(NULL, "t0", 0, 0, &info), WB_E_INVAL);
  FX_OK(wb_snapshot_shard(s, "only1", 1, 0, &info));
  assert_int_equal(info.shape[0], 4);
  assert_int_equal(info.version, 1);
  assert_int_equal(vx_check_all(s, 2, ALL, 1), 0);
  FX_OK(wb_snapshot_release(s));
  wb_detach(rc);
  wb_detach(c1);
  wb_detach(c0);
}

static void test_a_plain_topic_is_its_own_single_shard(void **state) {
  wb_client *c;
  wb_topic *t;
  FX_OK(fx_attach(*state, "plain", &c));
  FX_OK(fx_create_topic(c, "plain", 2, 1, 16, &t));
  wb_update *u;
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_update_begin(t, VX_TIMEOUT_MS, &u));
  FX_EXPECT(wb_update_shard(u, "t0", 1, &info), WB_E_NOT_FOUND);
  FX_OK(wb_update_shard(u, "t0", 0, &info));
  fx_fill_u32(info.data, 16, 1, 0);
  FX_OK(wb_update_publish(u, NULL, 0, NULL));
  wb_snapshot *s;
  FX_OK(wb_snapshot_acquire(t, 0, VX_TIMEOUT_MS, &s));
  FX_EXPECT(wb_snapshot_shard(s, "t0", 0, 0, &info), WB_E_INVAL);
  assert_non_null(strstr(wb_last_error(), "not sharded"));
  FX_OK(wb_snapshot_tensor(s, "t0", &info));
  assert_int_equal(fx_check_u32(info.data, 16, 1, 0), -1);
  FX_OK(wb_snapshot_release(s));
  wb_detach(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_updates_and_snapshots_refuse_what_a_sharded_model_cannot_do, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_a_plain_topic_is_its_own_single_shard, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
