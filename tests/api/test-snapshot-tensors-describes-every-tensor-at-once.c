/* wb_snapshot_tensors: every tensor and view of a snapshot in one call, each element as wb_snapshot_tensor_at
 * fills it, also into elements larger than this header's (a newer caller's struct_size); the count alone with
 * out NULL; and its refusals: NULL arguments, a capacity below the count (WB_E_SIZE, the count set), a
 * struct_size too small (WB_E_INVAL), a sharded topic (WB_E_STATE). wb_snapshot_place: the same nonzero number
 * for every version of an R = 1 host topic (sharded too), 0 for R = 2 ones, and its refusals (NULL arguments);
 * a CUDA allocation changing state moves it on (bindings/python/tests/test_snapshot_tensors.py, on a GPU). */
#include <string.h>

#include "fixture.h"

#define ELEMS 16

/* Topic "m" of t0..t2 and a view "t0.head" of t0's first 4 elements, version 1 published. */
static wb_topic *publish_one(wb_client *c, wb_snapshot **snap) {
  wb_topic *t;
  FX_OK(fx_create_topic(c, "m", 2, 3, ELEMS, &t));
  wb_view_spec view = WB_VIEW_SPEC_INIT;
  view.name = "t0.head";
  view.parent = "t0";
  view.dtype = WB_DTYPE_U32;
  view.ndim = 1;
  view.shape[0] = 4;
  view.strides[0] = 1;
  FX_OK(wb_tensor_view(t, &view));
  FX_OK(fx_publish(t, 7, ELEMS, NULL));
  FX_OK(wb_snapshot_acquire(t, 0, 1000, snap));
  return t;
}

static void same_as_one_at_a_time(const wb_tensor_info *got, wb_snapshot *snap, uint32_t i) {
  wb_tensor_info want = WB_TENSOR_INFO_INIT;
  FX_OK(wb_snapshot_tensor_at(snap, i, &want));
  assert_int_equal(got->index, i);
  assert_string_equal(got->name, want.name);
  assert_ptr_equal(got->data, want.data);
  assert_int_equal(got->dtype, want.dtype);
  assert_int_equal(got->ndim, want.ndim);
  assert_int_equal(got->shape[0], want.shape[0]);
  assert_int_equal(got->nbytes, want.nbytes);
  assert_int_equal(got->version, want.version);
  assert_int_equal(got->is_view, want.is_view);
  assert_int_equal(got->device_type, WB_DEVICE_HOST);
}

static void every_tensor_in_one_call(void **state) {
  wb_client *c;
  wb_snapshot *snap;
  FX_OK(fx_attach(*state, "pub", &c));
  publish_one(c, &snap);
  uint32_t count = 0;
  FX_OK(wb_snapshot_tensors(snap, NULL, 0, &count));
  assert_int_equal(count, 4);
  wb_tensor_info infos[5];
  for (int i = 0; i < 5; ++i) infos[i] = (wb_tensor_info)WB_TENSOR_INFO_INIT;
  infos[4].name = "untouched";
  FX_OK(wb_snapshot_tensors(snap, infos, 5, &count));
  assert_int_equal(count, 4);
  for (uint32_t i = 0; i < count; ++i) same_as_one_at_a_time(&infos[i], snap, i);
  assert_string_equal(infos[3].name, "t0.head");
  assert_int_equal(fx_check_u32(infos[1].data, ELEMS, 1, 1), -1);
  assert_string_equal(infos[4].name, "untouched");

  /* A caller built against a newer header: larger elements, each written at its own stride. */
  struct newer {
    wb_tensor_info info;
    uint64_t added[3];
  } big[4];
  memset(big, 0xab, sizeof(big));
  big[0].info.struct_size = sizeof(struct newer);
  FX_OK(wb_snapshot_tensors(snap, &big[0].info, 4, &count));
  for (uint32_t i = 0; i < count; ++i) {
    assert_int_equal(big[i].info.struct_size, sizeof(struct newer));
    same_as_one_at_a_time(&big[i].info, snap, i);
    assert_true(big[i].added[2] == 0xabababababababab); /* past what this library knows: left alone */
  }
  FX_OK(wb_snapshot_release(snap));
  FX_OK(wb_detach(c));
}

static void refusals(void **state) {
  wb_client *c;
  wb_snapshot *snap;
  FX_OK(fx_attach(*state, "pub", &c));
  publish_one(c, &snap);
  wb_tensor_info infos[4];
  for (int i = 0; i < 4; ++i) infos[i] = (wb_tensor_info)WB_TENSOR_INFO_INIT;
  uint32_t count = 99;
  FX_EXPECT(wb_snapshot_tensors(NULL, infos, 4, &count), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_tensors(snap, infos, 4, NULL), WB_E_INVAL);
  FX_EXPECT(wb_snapshot_tensors(snap, NULL, 4, &count), WB_E_INVAL);
  fx_expect_message("out is NULL but capacity is 4", NULL);
  FX_EXPECT(wb_snapshot_tensors(snap, infos, 3, &count), WB_E_SIZE);
  fx_expect_message("topic 'm' has 4 tensors and views, more than the capacity of 3", NULL);
  assert_int_equal(count, 4);
  infos[0].struct_size = 8;
  FX_EXPECT(wb_snapshot_tensors(snap, infos, 4, &count), WB_E_INVAL);
  fx_expect_message("wb_tensor_info.struct_size is 8", NULL);
  FX_OK(wb_snapshot_release(snap));
  FX_OK(wb_detach(c));
}

/* Version 1 of sharded topic name (one rank of one, R = replicas, one shard), leased. */
static wb_snapshot *sharded_version(wb_client *c, const char *name, uint32_t replicas) {
  wb_topic *t;
  FX_OK(fx_create_rank(c, name, replicas, 0, 1, &t));
  wb_shard_spec spec = fx_shard_1d("w", WB_DTYPE_F32, 8, 0, 8);
  FX_OK(wb_shard_alloc(t, &spec, 1));
  FX_OK(wb_topic_seal_rank(t, 5000));
  wb_update *u;
  FX_OK(wb_update_begin(t, 5000, &u));
  FX_OK(wb_update_publish(u, NULL, 0, NULL));
  uint64_t v = 0;
  FX_OK(wb_topic_wait(t, 0, 5000, &v)); /* the commit of a sharded version may come just after the publish */
  wb_snapshot *snap;
  FX_OK(wb_snapshot_acquire(t, 0, 5000, &snap));
  return snap;
}

static void a_sharded_topic_has_no_one_address_per_tensor(void **state) {
  wb_client *c;
  FX_OK(fx_attach(*state, "rank", &c));
  wb_snapshot *snap = sharded_version(c, "sharded", 2);
  wb_tensor_info infos[1] = {WB_TENSOR_INFO_INIT};
  uint32_t count = 0;
  FX_EXPECT(wb_snapshot_tensors(snap, infos, 1, &count), WB_E_STATE);
  fx_expect_message("'w' is sharded", NULL);
  FX_OK(wb_snapshot_release(snap));
  FX_OK(wb_detach(c));
}

/* The first tensor's address in the latest version of t, and the snapshot's place. */
static void *first_data(wb_topic *t, uint64_t *place) {
  wb_snapshot *snap;
  FX_OK(wb_snapshot_acquire(t, 0, 1000, &snap));
  FX_OK(wb_snapshot_place(snap, place));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_snapshot_tensor_at(snap, 0, &info));
  FX_OK(wb_snapshot_release(snap));
  return info.data;
}

static void place_is_the_same_while_the_tensors_lie_in_the_same_memory(void **state) {
  wb_client *c;
  FX_OK(fx_attach(*state, "pub", &c));
  wb_topic *one, *two;
  FX_OK(fx_create_topic(c, "one", 1, 2, ELEMS, &one));
  FX_OK(fx_publish(one, 3, ELEMS, NULL));
  uint64_t first = 0, again = 0;
  void *data = first_data(one, &first);
  assert_true(first != 0);
  FX_OK(fx_publish(one, 3, ELEMS, NULL)); /* R = 1: in place */
  assert_ptr_equal(first_data(one, &again), data);
  assert_int_equal(again, first);

  FX_OK(fx_create_topic(c, "two", 2, 2, ELEMS, &two)); /* host memory added: nothing moves (CUDA: see torch) */
  uint64_t after = 0;
  assert_ptr_equal(first_data(one, &after), data);
  assert_int_equal(after, first);

  FX_OK(fx_publish(two, 3, ELEMS, NULL));
  FX_OK(fx_publish(two, 3, ELEMS, NULL));
  uint64_t replicas = 99;
  first_data(two, &replicas);
  assert_true(replicas == 0); /* R = 2: versions move between replicas, the caller must look */
  FX_OK(wb_detach(c));
}

static void a_sharded_topic_has_a_place_for_its_shards_and_refusals(void **state) {
  wb_client *c;
  FX_OK(fx_attach(*state, "rank", &c));
  wb_snapshot *one = sharded_version(c, "sharded1", 1), *two = sharded_version(c, "sharded2", 2);
  uint64_t place = 0;
  FX_OK(wb_snapshot_place(one, &place));
  assert_true(place != 0); /* R = 1: its shards stay where they are */
  FX_OK(wb_snapshot_place(two, &place));
  assert_true(place == 0);
  FX_EXPECT(wb_snapshot_place(one, NULL), WB_E_INVAL);
  fx_expect_message("snapshot or place is NULL", NULL);
  FX_EXPECT(wb_snapshot_place(NULL, &place), WB_E_INVAL);
  FX_OK(wb_snapshot_release(one));
  FX_OK(wb_snapshot_release(two));
  FX_OK(wb_detach(c));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(every_tensor_in_one_call, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(refusals, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_sharded_topic_has_no_one_address_per_tensor, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(place_is_the_same_while_the_tensors_lie_in_the_same_memory, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(a_sharded_topic_has_a_place_for_its_shards_and_refusals, fx_setup,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
