// The broker answers every malformed or hostile message with a specific error, never crashes, and keeps
// serving well-behaved clients.
#include <csignal>
#include <random>

#include "layout.hpp"
#include "raw_client.hpp"

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace proto = wb::proto;

namespace {

int attach_raw(int sock) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<uint32_t> fp = wb::shm::fingerprint_words();
  int fds = 0;
  int rc = raw::send_body(sock, b, proto::CreateAttachDirect(b, wb::shm::kLayoutVersion, &fp, 1, "raw"), &fds);
  return rc == WB_OK && fds == 1 ? WB_OK : rc;
}

fx_broker *broker_of(void **state) { return static_cast<fx_broker *>(*state); }

void assert_broker_serves(fx_broker *b) {
  assert_int_equal(kill(b->pid, 0), 0);
  wb_client *c;
  FX_OK(fx_attach(b, "after", &c));
  wb_topic *t;
  FX_OK(fx_create_topic(c, "still-serving", 2, 2, 16, &t));
  FX_OK(fx_publish(t, 3, 16, nullptr));
  FX_OK(wb_detach(c));
}

void garbage_datagrams_are_refused_with_protocol_errors(void **state) {
  fx_broker *b = broker_of(state);
  std::mt19937 rng(42);
  for (int i = 0; i < 300; ++i) {
    int sock = raw::connect_to(b->socket_path);
    assert_true(sock >= 0);
    std::vector<uint8_t> junk(1 + rng() % 2048);
    for (uint8_t &byte : junk) byte = uint8_t(rng());
    int rc = raw::exchange(sock, junk.data(), junk.size());
    assert_int_equal(rc, WB_E_PROTOCOL);
    close(sock);
  }
  assert_broker_serves(b);
}

void a_message_type_without_its_body_is_refused(void **state) {
  fx_broker *b = broker_of(state);
  int sock = raw::connect_to(b->socket_path);
  assert_int_equal(attach_raw(sock), WB_OK);
  for (proto::Body type : {proto::Body::CreateTopic, proto::Body::Published, proto::Body::RegisterTensors}) {
    flatbuffers::FlatBufferBuilder builder;  // found by fuzz-broker-messages: it used to crash the broker
    builder.Finish(proto::CreateMessage(builder, 1, type, 0));
    assert_int_equal(raw::exchange(sock, builder.GetBufferPointer(), builder.GetSize()), WB_E_PROTOCOL);
  }
  close(sock);
  assert_broker_serves(b);
}

void requests_before_attach_are_refused(void **state) {
  int sock = raw::connect_to(broker_of(state)->socket_path);
  flatbuffers::FlatBufferBuilder b;
  assert_int_equal(raw::send_body(sock, b, proto::CreateOpenTopicDirect(b, "x")), WB_E_PROTOCOL);
  close(sock);
}

void a_client_of_another_layout_is_refused(void **state) {
  int sock = raw::connect_to(broker_of(state)->socket_path);
  std::vector<uint32_t> fp = wb::shm::fingerprint_words();
  fp[2] += 8;  // a Topic of another size
  flatbuffers::FlatBufferBuilder b;
  assert_int_equal(raw::send_body(sock, b, proto::CreateAttachDirect(b, wb::shm::kLayoutVersion, &fp, 1, "old")),
                   WB_E_ABI_MISMATCH);
  flatbuffers::FlatBufferBuilder b2;
  assert_int_equal(raw::send_body(sock, b2, proto::CreateAttachDirect(b2, wb::shm::kLayoutVersion + 1, nullptr, 1, "x")),
                   WB_E_ABI_MISMATCH);
  close(sock);
}

void hostile_fields_get_specific_errors(void **state) {
  fx_broker *b = broker_of(state);
  int sock = raw::connect_to(b->socket_path);
  assert_int_equal(attach_raw(sock), WB_OK);
  flatbuffers::FlatBufferBuilder b1;
  assert_int_equal(raw::send_body(sock, b1, proto::CreateAttachDirect(b1, 1, nullptr, 1, "again")), WB_E_PROTOCOL);

  flatbuffers::FlatBufferBuilder b2;
  std::string embedded_nul("a\0b", 3);
  auto name = b2.CreateString(embedded_nul);
  assert_int_equal(raw::send_body(sock, b2, proto::CreateCreateTopic(b2, name, 2)), WB_E_INVAL);

  flatbuffers::FlatBufferBuilder b3;
  assert_int_equal(raw::send_body(sock, b3, proto::CreateCreateTopicDirect(b3, "t", 9)), WB_E_INVAL);
  flatbuffers::FlatBufferBuilder b4;
  assert_int_equal(raw::send_body(sock, b4, proto::CreateCreateTopicDirect(b4, "t", 2)), WB_OK);

  flatbuffers::FlatBufferBuilder b5;  // topic index out of range
  assert_int_equal(raw::send_body(sock, b5, proto::CreateCloseTopic(b5, 60000)), WB_E_NOT_FOUND);

  flatbuffers::FlatBufferBuilder b6;  // a shape whose byte size overflows
  std::vector<int64_t> huge{INT64_MAX / 2, 4};
  auto spec = proto::CreateTensorSpecDirect(b6, "w", WB_DTYPE_F32, &huge);
  std::vector<flatbuffers::Offset<proto::TensorSpec>> specs{spec};
  assert_int_equal(raw::send_body(sock, b6, proto::CreateAllocTensorsDirect(b6, 0, &specs)), WB_E_SHAPE);

  flatbuffers::FlatBufferBuilder b7;  // nine dimensions
  std::vector<int64_t> nine(9, 1);
  auto spec9 = proto::CreateTensorSpecDirect(b7, "w", WB_DTYPE_F32, &nine);
  std::vector<flatbuffers::Offset<proto::TensorSpec>> specs9{spec9};
  assert_int_equal(raw::send_body(sock, b7, proto::CreateAllocTensorsDirect(b7, 0, &specs9)), WB_E_SHAPE);

  flatbuffers::FlatBufferBuilder b8;  // unknown dtype
  std::vector<int64_t> shape{4};
  auto spec_dt = proto::CreateTensorSpecDirect(b8, "w", 99, &shape);
  std::vector<flatbuffers::Offset<proto::TensorSpec>> specs_dt{spec_dt};
  assert_int_equal(raw::send_body(sock, b8, proto::CreateAllocTensorsDirect(b8, 0, &specs_dt)), WB_E_DTYPE);

  flatbuffers::FlatBufferBuilder b9;  // empty allocation request
  assert_int_equal(raw::send_body(sock, b9, proto::CreateAllocTensors(b9, 0)), WB_E_INVAL);

  flatbuffers::FlatBufferBuilder b10;
  assert_int_equal(raw::send_body(sock, b10, proto::CreateGetAllocation(b10, 12345)), WB_E_NOT_FOUND);

  flatbuffers::FlatBufferBuilder b11;  // Subscribe without a descriptor
  assert_int_equal(raw::send_body(sock, b11, proto::CreateSubscribe(b11, 0)), WB_E_PROTOCOL);

  flatbuffers::FlatBufferBuilder b12;  // strides and shape of different lengths
  std::vector<int64_t> s2{2, 2}, st1{1};
  auto view = proto::CreateCreateViewDirect(b12, 0, "v", "w", WB_DTYPE_F32, 0, &s2, &st1);
  assert_int_equal(raw::send_body(sock, b12, view), WB_E_SHAPE);
  close(sock);
  assert_broker_serves(b);
}

void a_reader_cannot_act_as_publisher(void **state) {
  fx_broker *b = broker_of(state);
  wb_client *c;
  FX_OK(fx_attach(b, "owner", &c));
  wb_topic *t;
  FX_OK(fx_create_topic(c, "owned", 2, 1, 16, &t));
  int sock = raw::connect_to(b->socket_path);
  assert_int_equal(attach_raw(sock), WB_OK);
  flatbuffers::FlatBufferBuilder b1;
  std::vector<int64_t> shape{4};
  auto spec = proto::CreateTensorSpecDirect(b1, "w", WB_DTYPE_F32, &shape);
  std::vector<flatbuffers::Offset<proto::TensorSpec>> specs{spec};
  assert_int_equal(raw::send_body(sock, b1, proto::CreateAllocTensorsDirect(b1, 0, &specs)), WB_E_ROLE);
  flatbuffers::FlatBufferBuilder b2;
  assert_int_equal(raw::send_body(sock, b2, proto::CreateCloseTopic(b2, 0)), WB_E_ROLE);
  close(sock);
  FX_OK(wb_detach(c));
}

void hostile_cuda_requests_get_specific_errors(void **state) {
  fx_broker *b = broker_of(state);
  int sock = raw::connect_to(b->socket_path);
  assert_int_equal(attach_raw(sock), WB_OK);
  flatbuffers::FlatBufferBuilder b0;
  assert_int_equal(raw::send_body(sock, b0, proto::CreateCreateTopicDirect(b0, "gpu", 1)), WB_OK);
  std::vector<uint8_t> uuid(16, 7), short_uuid(3, 7), handle(64, 1);

  flatbuffers::FlatBufferBuilder b1;  // not a CUDA kind
  assert_int_equal(raw::send_body(sock, b1, proto::CreateRegisterCudaAllocationDirect(b1, 0, 1, 4096, &uuid,
                                                                                          &handle, 0x1000, 0)),
                       WB_E_INVAL);
  flatbuffers::FlatBufferBuilder b2;  // a GPU UUID of 3 bytes
  assert_int_equal(raw::send_body(sock, b2, proto::CreateRegisterCudaAllocationDirect(b2, 0, 2, 4096, &short_uuid,
                                                                                          &handle, 0x1000, 0)),
                       WB_E_INVAL);
  flatbuffers::FlatBufferBuilder b3;  // legacy IPC without its handle
  assert_int_equal(raw::send_body(sock, b3, proto::CreateRegisterCudaAllocationDirect(b3, 0, 2, 4096, &uuid,
                                                                                          nullptr, 0x1000, 0)),
                       WB_E_INVAL);
  flatbuffers::FlatBufferBuilder b4;  // a topic that does not exist
  assert_int_equal(raw::send_body(sock, b4, proto::CreateRegisterCudaAllocationDirect(b4, 999, 2, 4096, &uuid,
                                                                                      &handle, 0x1000, 0)),
                   WB_E_NOT_FOUND);
  flatbuffers::FlatBufferBuilder b5;  // chunks for an allocation that does not exist, and without their fds
  std::vector<uint64_t> sizes{4096};
  assert_int_equal(raw::send_body(sock, b5, proto::CreateAddAllocationChunksDirect(b5, 12345, 0, &sizes)), WB_E_NOT_FOUND);
  flatbuffers::FlatBufferBuilder b6;
  assert_int_equal(raw::send_body(sock, b6, proto::CreateImportAllocation(b6, 12345, 0)), WB_E_NOT_FOUND);
  flatbuffers::FlatBufferBuilder b7;
  assert_int_equal(raw::send_body(sock, b7, proto::CreateRevokeAllocation(b7, 12345)), WB_E_NOT_FOUND);
  flatbuffers::FlatBufferBuilder b8;
  assert_int_equal(raw::send_body(sock, b8, proto::CreateReleaseAllocation(b8, 12345)), WB_E_NOT_FOUND);
  flatbuffers::FlatBufferBuilder b9;  // a registered tensor in an allocation that does not exist
  std::vector<int64_t> shape{4};
  std::vector<uint32_t> allocations{12345};
  std::vector<uint64_t> offsets{0};
  auto tensor = proto::CreateRegisteredTensorDirect(b9, "w", WB_DTYPE_F32, &shape, &allocations, &offsets);
  std::vector<flatbuffers::Offset<proto::RegisteredTensor>> tensors{tensor};
  assert_int_equal(raw::send_body(sock, b9, proto::CreateRegisterTensorsDirect(b9, 0, &tensors)), WB_E_NOT_FOUND);
  close(sock);
  assert_broker_serves(b);
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(garbage_datagrams_are_refused_with_protocol_errors, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_message_type_without_its_body_is_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(requests_before_attach_are_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_client_of_another_layout_is_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(hostile_fields_get_specific_errors, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(a_reader_cannot_act_as_publisher, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(hostile_cuda_requests_get_specific_errors, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
