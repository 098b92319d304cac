// weightbus.hpp, the C++ wrapper the tools use: each call returns what its C call returns, and a failure throws
// weightbus::Error with the C call's code and the library's message. A moved-from handle is null, which every C
// call refuses with WB_E_INVAL: the error case of calls that cannot otherwise fail here. CUDA calls are checked
// for their error without a GPU (libcuda forced missing); tests/gpu/ runs them on one.
#include <weightbus/dlpack_versioned.h>
#include <weightbus/weightbus.hpp>

#include <dlpack/dlpack.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace {

// Runs call, which must throw weightbus::Error with code; returns the error for more checks.
template <class Call>
weightbus::Error expect_error(int code, Call call) {
  try {
    call();
  } catch (const weightbus::Error &e) {
    if (e.code() != code) fail_msg("threw %s (%s), expected %s", wb_strerror(e.code()), e.what(), wb_strerror(code));
    return e;
  }
  fail_msg("did not throw %s", wb_strerror(code));
  return weightbus::Error(code);
}

weightbus::Client attach(const fx_broker *b) {
  wb_attach_options options = WB_ATTACH_OPTIONS_INIT;
  options.socket_path = b->socket_path;
  options.client_name = "cxx-wrapper";
  return weightbus::Client(&options);
}

// Topic "t" of two f32 tensors "a" and "b" of 4 elements, version 1 published with "a" = 1..4.
weightbus::Topic publish_one(weightbus::Client &client) {
  weightbus::Topic topic = client.create("t", 1);
  wb_tensor_spec specs[2] = {WB_TENSOR_SPEC_INIT, WB_TENSOR_SPEC_INIT};
  for (int i = 0; i < 2; ++i) {
    specs[i].name = i == 0 ? "a" : "b";
    specs[i].dtype = WB_DTYPE_F32;
    specs[i].ndim = 1;
    specs[i].shape[0] = 4;
  }
  topic.alloc({specs[0], specs[1]});
  weightbus::Update update = topic.begin(1000);
  float *a = static_cast<float *>(update.tensor("a").data);
  for (int i = 0; i < 4; ++i) a[i] = float(i + 1);
  update.publish("m");
  return topic;
}

void errors_carry_code_and_message(void **state) {
  (void)state;
  const weightbus::Error e(WB_E_NOT_FOUND, "no such thing");
  assert_int_equal(e.code(), WB_E_NOT_FOUND);
  assert_string_equal(e.message().c_str(), "no such thing");
  assert_string_equal(e.what(), (std::string(wb_strerror(WB_E_NOT_FOUND)) + ": no such thing").c_str());
  // Error(code) copies the library's message of the last failure.
  assert_int_equal(wb_topic_latest(nullptr, nullptr), WB_E_INVAL);
  const std::string last = wb_last_error();
  const weightbus::Error copied(WB_E_INVAL);
  assert_string_equal(copied.message().c_str(), last.c_str());
}

void default_socket_path_resolves_like_the_c_call(void **state) {
  (void)state;
  char want[4096];
  setenv("WEIGHTBUS_SOCKET", "/run/wb-test.sock", 1);
  assert_int_equal(wb_default_socket_path("job", want, sizeof want), WB_OK);
  assert_string_equal(weightbus::default_socket_path("job").c_str(), want);
  assert_string_equal(weightbus::default_socket_path().c_str(), want);
  setenv("WEIGHTBUS_SOCKET", std::string(5000, 'x').c_str(), 1);  // longer than any path
  expect_error(WB_E_SIZE, [] { weightbus::default_socket_path("job"); });
  unsetenv("WEIGHTBUS_SOCKET");
  expect_error(WB_E_INVAL, [] { weightbus::default_socket_path(std::string("jo\0b", 4)); });
}

void listing_returns_every_entry(void **state) {
  fx_broker *b = static_cast<fx_broker *>(*state);
  weightbus::Client client = attach(b);
  weightbus::Client other = attach(b);
  weightbus::Topic topic = publish_one(client);
  weightbus::Snapshot snapshot = topic.acquire(1);

  assert_int_equal(client.id() == other.id(), 0);
  const std::vector<wb_topic_info> topics = client.topics();
  assert_int_equal(topics.size(), 1);
  assert_string_equal(topics[0].name, "t");
  assert_int_equal(topics[0].latest, 1);
  const std::vector<wb_client_info> clients = client.clients();
  assert_int_equal(clients.size(), 2);
  const std::vector<wb_lease_info> leases = client.leases();
  assert_int_equal(leases.size(), 1);
  assert_int_equal(leases[0].client_id, client.id());
  assert_int_equal(leases[0].version, 1);
  const wb_broker_info broker = client.broker_info();
  assert_int_equal(broker.pid, uint32_t(b->pid));
  assert_int_equal(broker.clients, 2);
  assert_int_equal(broker.publishes, 1);

  weightbus::Client moved = std::move(other);
  expect_error(WB_E_INVAL, [&] { other.id(); });
  expect_error(WB_E_INVAL, [&] { other.topics(); });
  expect_error(WB_E_INVAL, [&] { other.clients(); });
  expect_error(WB_E_INVAL, [&] { other.leases(); });
  expect_error(WB_E_INVAL, [&] { other.broker_info(); });
}

void topic_describes_its_tensors(void **state) {
  fx_broker *b = static_cast<fx_broker *>(*state);
  weightbus::Client client = attach(b);
  wb_topic_options options = WB_TOPIC_OPTIONS_INIT;
  options.replicas = 3;
  assert_int_equal(client.create("three", options).info().replicas, 3);
  options.replicas = WB_MAX_REPLICAS + 1;
  expect_error(WB_E_INVAL, [&] { client.create("many", options); });
  weightbus::Topic topic = publish_one(client);
  const wb_topic_info info = topic.info();
  assert_string_equal(info.name, "t");
  assert_int_equal(info.tensor_count, 2);
  assert_int_equal(topic.tensor_count(), 2);
  assert_string_equal(topic.tensor(1).name, "b");
  expect_error(WB_E_NOT_FOUND, [&] { topic.tensor(2); });
  weightbus::Topic moved = std::move(topic);
  expect_error(WB_E_INVAL, [&] { topic.info(); });
  expect_error(WB_E_INVAL, [&] { topic.tensor_count(); });
}

void updates_number_versions_and_export_dlpack(void **state) {
  fx_broker *b = static_cast<fx_broker *>(*state);
  weightbus::Client client = attach(b);
  weightbus::Topic topic = publish_one(client);
  weightbus::Update update = topic.begin(1000);
  expect_error(WB_E_INVAL, [&] { update.set_version(1); });  // not after the latest
  update.set_version(10);
  DLManagedTensor *exported = update.dlpack("b");
  assert_int_equal(exported->dl_tensor.shape[0], 4);
  exported->deleter(exported);
  expect_error(WB_E_NOT_FOUND, [&] { update.dlpack("c"); });
  assert_int_equal(update.publish(), 10);
}

void snapshots_copy_export_and_synchronize(void **state) {
  fx_broker *b = static_cast<fx_broker *>(*state);
  weightbus::Client client = attach(b);
  weightbus::Topic topic = publish_one(client);
  weightbus::Snapshot snapshot = topic.acquire(1);
  assert_true(snapshot.timestamp_ns() > 0);
  const std::vector<wb_tensor_info> all = snapshot.tensors();
  assert_int_equal(all.size(), 2);
  assert_string_equal(all[1].name, "b");
  assert_true(static_cast<const float *>(all[0].data)[3] == 4.0f);
  assert_true(snapshot.place() != 0);  // R = 1: every version lies in the same memory
  // Without libcuda there is no GPU work to wait for, nor a way to: the library says so.
  expect_error(WB_E_NO_CUDA, [&] { snapshot.synchronize(1000); });
  expect_error(WB_E_NO_CUDA, [&] { snapshot.wait_stream(nullptr); });

  float copied[4] = {};
  wb_copy_target target = WB_COPY_TARGET_INIT;
  target.name = "a";
  target.dst = copied;
  target.dst_bytes = sizeof copied;
  snapshot.copy_into({target});
  assert_true(copied[0] == 1.0f && copied[3] == 4.0f);
  target.name = "c";
  expect_error(WB_E_NOT_FOUND, [&] { snapshot.copy_into({target}); });

  DLManagedTensor *legacy = snapshot.dlpack("a");
  assert_int_equal(legacy->dl_tensor.shape[0], 4);
  legacy->deleter(legacy);
  DLManagedTensorVersioned *versioned = snapshot.dlpack_versioned("a");
  assert_true((versioned->flags & DLPACK_FLAG_BITMASK_READ_ONLY) != 0);
  versioned->deleter(versioned);
  expect_error(WB_E_NOT_FOUND, [&] { snapshot.dlpack("c"); });
  expect_error(WB_E_NOT_FOUND, [&] { snapshot.dlpack_versioned("c"); });

  weightbus::Snapshot moved = std::move(snapshot);
  expect_error(WB_E_INVAL, [&] { snapshot.timestamp_ns(); });
}

// Rank `rank` of 2's shard of f32 "w" [4, 2]: rows [2 * rank, 2 * rank + 2).
wb_shard_spec row_shard(uint32_t rank) {
  wb_shard_spec spec = WB_SHARD_SPEC_INIT;
  spec.name = "w";
  spec.dtype = WB_DTYPE_F32;
  spec.ndim = 2;
  spec.logical_shape[0] = 4;
  spec.logical_shape[1] = 2;
  spec.offset[0] = 2 * rank;
  spec.extent[0] = 2;
  spec.extent[1] = 2;
  return spec;
}

void sharded_topics_publish_per_rank_and_plans_copy_slices(void **state) {
  fx_broker *b = static_cast<fx_broker *>(*state);
  weightbus::Client first = attach(b);
  weightbus::Client second = attach(b);
  std::vector<weightbus::Topic> ranks;
  ranks.push_back(first.create_rank("s", 0, 2));
  ranks.push_back(second.create_rank("s", 1, 2));
  expect_error(WB_E_INVAL, [&] { second.create_rank("s", 1, 3); });
  for (uint32_t r = 0; r < 2; ++r) ranks[r].alloc_shards({row_shard(r)});
  for (weightbus::Topic &rank : ranks) rank.seal_rank(5000);
  for (uint32_t r = 0; r < 2; ++r) {
    weightbus::Update update = ranks[r].begin(5000);
    float *rows = static_cast<float *>(update.shard("w").data);
    for (int i = 0; i < 4; ++i) rows[i] = float(4 * r + i);
    expect_error(WB_E_NOT_FOUND, [&] { update.shard("w", 1); });
    assert_int_equal(update.publish(), 1);
  }
  weightbus::Topic reader = first.open("s");
  assert_int_equal(reader.wait(0, 5000), 1);
  const wb_topic_info info = reader.info();
  assert_int_equal(info.ranks, 2);
  assert_int_equal(info.layout_complete, 1);
  const wb_rank_info rank = reader.rank_info(1);
  assert_int_equal(rank.rank, 1);
  assert_int_equal(rank.sealed, 1);
  assert_int_equal(rank.published, 1);
  expect_error(WB_E_INVAL, [&] { reader.rank_info(2); });
  const wb_shard_spec box = reader.shard("w", 1);
  assert_int_equal(box.offset[0], 2);
  assert_int_equal(box.extent[0], 2);
  expect_error(WB_E_NOT_FOUND, [&] { reader.shard("w", 1, 1); });

  weightbus::Snapshot snapshot = reader.acquire(1);
  const wb_tensor_info shard = snapshot.shard("w", 1);
  assert_int_equal(shard.shape[0], 2);
  assert_true(static_cast<const float *>(shard.data)[0] == 4.0f);
  expect_error(WB_E_NOT_FOUND, [&] { snapshot.shard("x", 0); });

  // Column 1 of the whole tensor, from both ranks' shards.
  float column[4] = {};
  wb_slice_part part = WB_SLICE_PART_INIT;
  part.name = "w";
  part.ndim = 2;
  part.offset[1] = 1;
  part.extent[0] = 4;
  part.extent[1] = 1;
  wb_slice_dest dest = WB_SLICE_DEST_INIT;
  dest.ndim = 2;
  dest.shape[0] = 4;
  dest.shape[1] = 1;
  dest.dtype = WB_DTYPE_F32;
  dest.dst = column;
  dest.dst_bytes = sizeof column;
  weightbus::Plan plan(reader, {dest}, {part});
  plan.run(snapshot);
  assert_true(column[0] == 1.0f && column[1] == 3.0f && column[2] == 5.0f && column[3] == 7.0f);
  assert_int_equal(plan.info().dests, 1);
  assert_int_equal(plan.info().bytes, sizeof column);
  // Armed: version 2 leased before it is published, copied by wait(); a timeout keeps the arm.
  weightbus::Armed armed = plan.arm(1);
  assert_int_equal(armed.version(), 2);
  assert_false(armed.on_stream());  // host destinations: wait() copies
  expect_error(WB_E_TIMEOUT, [&] { armed.wait(0); });
  assert_true(bool(armed));
  for (uint32_t r = 0; r < 2; ++r) {
    weightbus::Update update = ranks[r].begin(5000);
    float *rows = static_cast<float *>(update.shard("w").data);
    for (int i = 0; i < 4; ++i) rows[i] = float(10 + 4 * r + i);
    assert_int_equal(update.publish(), 2);
  }
  {
    weightbus::Snapshot second_version = armed.wait(5000);
    assert_false(bool(armed));
    assert_int_equal(second_version.version(), 2);
    assert_true(column[0] == 11.0f && column[3] == 17.0f);
  }
  expect_error(WB_E_INVAL, [&] { armed.wait(0); });
  expect_error(WB_E_INVAL, [&] { plan.arm(3); });
  dest.dtype = WB_DTYPE_F16;
  expect_error(WB_E_DTYPE, [&] { weightbus::Plan(reader, {dest}, {part}); });
  weightbus::Plan moved = std::move(plan);
  expect_error(WB_E_INVAL, [&] { plan.info(); });
}

void split_helpers_return_values(void **state) {
  (void)state;
  const weightbus::Split chunk = weightbus::split(10, 3, 4, WB_SPLIT_CHUNK);
  assert_int_equal(chunk.offset, 9);
  assert_int_equal(chunk.extent, 1);
  expect_error(WB_E_SHAPE, [] { weightbus::split(10, 0, 4); });
  const weightbus::VocabSplit vocab = weightbus::split_vocab(1000, 1, 2);
  assert_int_equal(vocab.offset, 512);
  assert_int_equal(vocab.extent, 488);
  assert_int_equal(vocab.padded_extent, 512);
  expect_error(WB_E_INVAL, [] { weightbus::split_vocab(0, 0, 2); });
  const std::string q = "q", k = "k", v = "v";
  const std::array<wb_slice_part, 3> qkv = weightbus::parts_qkv(q, k, v, 32, 8, 128, 4096, 1, 2);
  assert_int_equal(qkv[0].offset[0], 2048);
  assert_int_equal(qkv[1].extent[0], 512);
  expect_error(WB_E_SHAPE, [&] { weightbus::parts_qkv(q, k, v, 32, 8, 128, 4096, 0, 3); });
  const std::vector<wb_slice_part> merged = weightbus::parts_merged({"gate", "up"}, {8, 8}, 4, 1, 2);
  assert_int_equal(merged.size(), 2);
  assert_int_equal(merged[1].offset[0], 4);
  expect_error(WB_E_INVAL, [] { weightbus::parts_merged({"gate", "up"}, {8}, 4, 1, 2); });
}

void cuda_calls_report_missing_cuda(void **state) {
  fx_broker *b = static_cast<fx_broker *>(*state);
  weightbus::Client client = attach(b);
  weightbus::Topic topic = client.create("gpu", 1);
  wb_tensor_spec spec = WB_TENSOR_SPEC_INIT;
  spec.name = "w";
  spec.dtype = WB_DTYPE_F32;
  spec.ndim = 1;
  spec.shape[0] = 4;
  expect_error(WB_E_NO_CUDA, [&] { topic.alloc_cuda({spec}, 0); });
  float host[4];
  expect_error(WB_E_NO_CUDA, [&] { topic.register_cuda({spec}, {host}); });
  const uint8_t uuid[16] = {};
  expect_error(WB_E_NO_CUDA, [&] { weightbus::cuda_device_ordinal(uuid); });
  weightbus::Topic rank = client.create_rank("gpu-shards", 0, 2);
  expect_error(WB_E_NO_CUDA, [&] { rank.alloc_shards_cuda({row_shard(0)}, 0); });
  expect_error(WB_E_NO_CUDA, [&] { rank.register_shards_cuda({row_shard(0)}, {host, host}); });
}

}  // namespace

int main() {
  setenv("WEIGHTBUS_LIBCUDA", "/nonexistent/libcuda.so.1", 1);  // no GPU, whatever the machine has
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(errors_carry_code_and_message),
      cmocka_unit_test(default_socket_path_resolves_like_the_c_call),
      cmocka_unit_test_setup_teardown(listing_returns_every_entry, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(topic_describes_its_tensors, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(updates_number_versions_and_export_dlpack, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(snapshots_copy_export_and_synchronize, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(sharded_topics_publish_per_rank_and_plans_copy_slices, fx_setup, fx_teardown),
      cmocka_unit_test(split_helpers_return_values),
      cmocka_unit_test_setup_teardown(cuda_calls_report_missing_cuda, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
