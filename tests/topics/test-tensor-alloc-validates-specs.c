/* wb_tensor_alloc creates contiguous, 64-byte aligned, zero-filled host tensors for the publisher only,
 * validates every spec (name, dtype, shape) before creating anything, accepts an identical re-declaration,
 * refuses a conflicting one with WB_E_EXISTS and new tensors after the first publish with WB_E_STATE. */
#include "fixture.h"

typedef struct pub_reader {
  wb_client *c, *r;
  wb_topic *pub, *reader;
} pub_reader;

static void open_topic(fx_broker *b, uint32_t replicas, pub_reader *p) {
  FX_OK(fx_attach(b, "publisher", &p->c));
  FX_OK(fx_attach(b, "reader", &p->r));
  FX_OK(fx_create_topic(p->c, "model", replicas, 0, 0, &p->pub));
  FX_OK(wb_topic_open(p->r, "model", &p->reader));
}

static void close_topic(pub_reader *p) {
  FX_OK(wb_detach(p->r));
  FX_OK(wb_detach(p->c));
}

static wb_tensor_spec spec(const char *name, int32_t dtype, uint32_t ndim, int64_t d0, int64_t d1) {
  wb_tensor_spec s = WB_TENSOR_SPEC_INIT;
  s.name = name;
  s.dtype = dtype;
  s.ndim = ndim;
  s.shape[0] = d0;
  s.shape[1] = d1;
  return s;
}

static uint32_t tensor_count(wb_topic *t) {
  uint32_t n = UINT32_MAX;
  FX_OK(wb_topic_tensor_count(t, &n));
  return n;
}

static void layout_is_described(void **state) {
  pub_reader p;
  open_topic(*state, 2, &p);
  wb_tensor_spec specs[3] = {
      spec("embed", WB_DTYPE_BF16, 2, 100, 7),
      spec("scale", WB_DTYPE_F32, 0, 0, 0), /* a scalar */
      spec("bias", WB_DTYPE_U8, 1, 3, 0),
  };
  FX_OK(wb_tensor_alloc(p.pub, specs, 3));
  assert_int_equal(tensor_count(p.pub), 3);
  assert_int_equal(tensor_count(p.reader), 3);

  static const uint64_t nbytes[3] = {100 * 7 * 2, 4, 3};
  for (uint32_t i = 0; i < 3; ++i) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    FX_OK(wb_topic_tensor(p.reader, i, &info));
    assert_int_equal(info.index, i);
    assert_string_equal(info.name, specs[i].name);
    assert_int_equal(info.dtype, specs[i].dtype);
    assert_int_equal(info.ndim, specs[i].ndim);
    for (uint32_t d = 0; d < info.ndim; ++d) assert_int_equal(info.shape[d], specs[i].shape[d]);
    assert_int_equal(info.nbytes, nbytes[i]);
    assert_null(info.data); /* a layout query */
    assert_int_equal(info.version, 0);
    assert_int_equal(info.device_type, WB_DEVICE_HOST);
    assert_int_equal(info.is_view, 0);
  }
  wb_tensor_info embed = WB_TENSOR_INFO_INIT;
  FX_OK(wb_topic_tensor(p.reader, 0, &embed));
  assert_int_equal(embed.strides[0], 7); /* row-major, in elements */
  assert_int_equal(embed.strides[1], 1);
  wb_tensor_info none = WB_TENSOR_INFO_INIT;
  FX_EXPECT(wb_topic_tensor(p.reader, 3, &none), WB_E_NOT_FOUND);
  close_topic(&p);
}

static void storage_is_aligned_and_zeroed_in_every_replica(void **state) {
  pub_reader p;
  open_topic(*state, 2, &p);
  wb_tensor_spec specs[3] = {
      spec("a", WB_DTYPE_U8, 1, 3, 0), /* odd sizes: the next tensor must still be aligned */
      spec("b", WB_DTYPE_F64, 2, 5, 3),
      spec("c", WB_DTYPE_I16, 1, 1000, 0),
  };
  FX_OK(wb_tensor_alloc(p.pub, specs, 3));
  /* Two updates touch both replicas (R = 2): each is aligned and starts zero-filled. */
  for (int v = 1; v <= 2; ++v) {
    wb_update *u;
    FX_OK(wb_update_begin(p.pub, 1000, &u));
    for (uint32_t i = 0; i < 3; ++i) {
      wb_tensor_info info = WB_TENSOR_INFO_INIT;
      FX_OK(wb_update_tensor_at(u, i, &info));
      assert_non_null(info.data);
      assert_int_equal((uintptr_t)info.data % WB_ALIGNMENT, 0);
      const unsigned char *bytes = info.data;
      for (uint64_t k = 0; k < info.nbytes; ++k) {
        if (bytes[k] != 0) fail_msg("replica %d of %s: byte %llu is %u, expected 0", v, specs[i].name, (unsigned long long)k, bytes[k]);
      }
    }
    uint64_t published;
    FX_OK(wb_update_publish(u, NULL, 0, &published));
    assert_int_equal(published, (uint64_t)v);
  }
  close_topic(&p);
}

static void specs_are_struct_size_apart(void **state) {
  /* A caller compiled against a later header passes larger specs: the library steps by specs[0].struct_size. */
  struct bigger_spec {
    wb_tensor_spec s;
    uint64_t future_field[3];
  } specs[2];
  pub_reader p;
  open_topic(*state, 1, &p);
  memset(specs, 0xab, sizeof(specs));
  for (int i = 0; i < 2; ++i) {
    specs[i].s = spec(i == 0 ? "first" : "second", WB_DTYPE_I32, 1, 10 + i, 0);
    specs[i].s.struct_size = sizeof(struct bigger_spec);
  }
  FX_OK(wb_tensor_alloc(p.pub, &specs[0].s, 2));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  FX_OK(wb_topic_tensor(p.pub, 1, &info));
  assert_string_equal(info.name, "second");
  assert_int_equal(info.shape[0], 11);
  close_topic(&p);
}

static void bad_specs_are_refused(void **state) {
  pub_reader p;
  char name[WB_NAME_MAX + 2];
  open_topic(*state, 2, &p);
  wb_tensor_spec s;

  s = spec(NULL, WB_DTYPE_U8, 1, 4, 0);
  FX_EXPECT(wb_tensor_alloc(p.pub, &s, 1), WB_E_INVAL);
  s = spec("", WB_DTYPE_U8, 1, 4, 0);
  FX_EXPECT(wb_tensor_alloc(p.pub, &s, 1), WB_E_NAME_TOO_LONG);
  s = spec(fx_name_of_length(name, WB_NAME_MAX + 1), WB_DTYPE_U8, 1, 4, 0);
  FX_EXPECT(wb_tensor_alloc(p.pub, &s, 1), WB_E_NAME_TOO_LONG);
  s = spec("x", 0, 1, 4, 0);
  FX_EXPECT(wb_tensor_alloc(p.pub, &s, 1), WB_E_DTYPE);
  s = spec("x", 99, 1, 4, 0);
  FX_EXPECT(wb_tensor_alloc(p.pub, &s, 1), WB_E_DTYPE);
  s = spec("x", WB_DTYPE_U8, WB_MAX_DIMS + 1, 4, 4);
  FX_EXPECT(wb_tensor_alloc(p.pub, &s, 1), WB_E_SHAPE);
  s = spec("x", WB_DTYPE_U8, 2, 4, -1);
  FX_EXPECT(wb_tensor_alloc(p.pub, &s, 1), WB_E_SHAPE);
  s = spec("x", WB_DTYPE_F64, 2, INT64_C(1) << 40, INT64_C(1) << 40); /* element count overflows */
  FX_EXPECT(wb_tensor_alloc(p.pub, &s, 1), WB_E_SHAPE);
  assert_int_equal(tensor_count(p.pub), 0);

  /* Exactly WB_NAME_MAX bytes and WB_MAX_DIMS dimensions are fine. */
  s = spec(fx_name_of_length(name, WB_NAME_MAX), WB_DTYPE_U8, WB_MAX_DIMS, 2, 2);
  for (int d = 0; d < WB_MAX_DIMS; ++d) s.shape[d] = 2;
  FX_OK(wb_tensor_alloc(p.pub, &s, 1));
  assert_int_equal(tensor_count(p.pub), 1);
  close_topic(&p);
}

static void all_or_nothing(void **state) {
  pub_reader p;
  open_topic(*state, 2, &p);
  wb_tensor_spec specs[3] = {
      spec("good", WB_DTYPE_U8, 1, 4, 0),
      spec("also-good", WB_DTYPE_U8, 1, 4, 0),
      spec("bad", 1234, 1, 4, 0),
  };
  FX_EXPECT(wb_tensor_alloc(p.pub, specs, 3), WB_E_DTYPE);
  assert_int_equal(tensor_count(p.pub), 0);
  FX_OK(wb_tensor_alloc(p.pub, specs, 2));
  assert_int_equal(tensor_count(p.pub), 2);
  close_topic(&p);
}

static void redeclaration_same_is_ok_other_is_exists(void **state) {
  pub_reader p;
  open_topic(*state, 2, &p);
  wb_tensor_spec s = spec("w", WB_DTYPE_F32, 2, 4, 4);
  FX_OK(wb_tensor_alloc(p.pub, &s, 1));
  FX_OK(wb_tensor_alloc(p.pub, &s, 1)); /* same dtype and shape: accepted, same tensor */
  assert_int_equal(tensor_count(p.pub), 1);
  wb_tensor_spec other_shape = spec("w", WB_DTYPE_F32, 2, 4, 5);
  FX_EXPECT(wb_tensor_alloc(p.pub, &other_shape, 1), WB_E_EXISTS);
  wb_tensor_spec other_dtype = spec("w", WB_DTYPE_BF16, 2, 4, 4);
  FX_EXPECT(wb_tensor_alloc(p.pub, &other_dtype, 1), WB_E_EXISTS);
  wb_tensor_spec other_ndim = spec("w", WB_DTYPE_F32, 1, 16, 0);
  FX_EXPECT(wb_tensor_alloc(p.pub, &other_ndim, 1), WB_E_EXISTS);
  assert_int_equal(tensor_count(p.pub), 1);
  close_topic(&p);
}

static void reader_cannot_alloc(void **state) {
  pub_reader p;
  open_topic(*state, 2, &p);
  wb_tensor_spec s = spec("w", WB_DTYPE_F32, 1, 4, 0);
  FX_EXPECT(wb_tensor_alloc(p.reader, &s, 1), WB_E_ROLE);
  assert_int_equal(tensor_count(p.pub), 0);
  close_topic(&p);
}

static void layout_is_sealed_by_first_publish(void **state) {
  pub_reader p;
  open_topic(*state, 2, &p);
  wb_tensor_spec s = spec("w", WB_DTYPE_F32, 1, 4, 0);
  FX_OK(wb_tensor_alloc(p.pub, &s, 1));
  wb_update *u;
  FX_OK(wb_update_begin(p.pub, 1000, &u));
  uint64_t v;
  FX_OK(wb_update_publish(u, NULL, 0, &v));
  wb_tensor_spec late = spec("late", WB_DTYPE_F32, 1, 4, 0);
  FX_EXPECT(wb_tensor_alloc(p.pub, &late, 1), WB_E_STATE);
  /* Re-declaring what exists is still accepted: a publisher that takes over re-runs its set-up. */
  FX_OK(wb_tensor_alloc(p.pub, &s, 1));
  assert_int_equal(tensor_count(p.pub), 1);
  close_topic(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(layout_is_described, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(storage_is_aligned_and_zeroed_in_every_replica, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(specs_are_struct_size_apart, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(bad_specs_are_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(all_or_nothing, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(redeclaration_same_is_ok_other_is_exists, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(reader_cannot_alloc, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(layout_is_sealed_by_first_publish, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
