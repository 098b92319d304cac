/*
 * layout-dump — what the C compiler sees in <weightbus/weightbus.h>, one fact per line, for the Rust and Go
 * bindings' tests to compare with their own declarations:
 *
 *   const NAME VALUE          every #define and enum constant, and every code of WB_ERROR_MAP
 *   size TYPE BYTES           sizeof every struct
 *   offset TYPE.FIELD BYTES   offsetof every field
 *   init TYPE.FIELD VALUE     the non-zero fields of every ..._INIT macro
 *
 * check-layout-dump.sh verifies that this list names everything the header declares.
 */
#include <stddef.h>
#include <stdio.h>

#include <weightbus/weightbus.h>

#define CONST(name) printf("const %s %lld\n", #name, (long long)(name))
#define SIZE(type) printf("size %s %zu\n", #type, sizeof(type))
#define FIELD(type, field) printf("offset %s.%s %zu\n", #type, #field, offsetof(type, field))
#define INIT(type, value, field) printf("init %s.%s %lld\n", #type, #field, (long long)(value).field)

static void constants(void) {
  CONST(WB_VERSION_MAJOR);
  CONST(WB_VERSION_MINOR);
  CONST(WB_VERSION_PATCH);
  CONST(WB_VERSION);
  printf("const WB_VERSION_STRING %s\n", WB_VERSION_STRING);

  CONST(WB_NAME_MAX);
  CONST(WB_MAX_DIMS);
  CONST(WB_MAX_REPLICAS);
  CONST(WB_METADATA_MAX);
  CONST(WB_ALIGNMENT);
  CONST(WB_VERSION_MAX);
  CONST(WB_CUDA_ALIGNMENT);
  CONST(WB_MAX_RANKS);
  CONST(WB_SHARD_REPLICATED);
  CONST(WB_SPLIT_EVEN);
  CONST(WB_SPLIT_CHUNK);
  CONST(WB_SCALE_NONE);
  CONST(WB_SCALE_TENSOR);
  CONST(WB_SCALE_CHANNEL);
  CONST(WB_SCALE_BLOCK);

  /* The codes, from the header's one list of them. */
#define ERROR_CONST(name, value, text) CONST(name);
  WB_ERROR_MAP(ERROR_CONST)
#undef ERROR_CONST

  CONST(WB_DTYPE_BOOL);
  CONST(WB_DTYPE_U8);
  CONST(WB_DTYPE_I8);
  CONST(WB_DTYPE_I16);
  CONST(WB_DTYPE_I32);
  CONST(WB_DTYPE_I64);
  CONST(WB_DTYPE_F16);
  CONST(WB_DTYPE_BF16);
  CONST(WB_DTYPE_F32);
  CONST(WB_DTYPE_F64);
  CONST(WB_DTYPE_F8E4M3);
  CONST(WB_DTYPE_F8E5M2);
  CONST(WB_DTYPE_U16);
  CONST(WB_DTYPE_U32);
  CONST(WB_DTYPE_U64);

  CONST(WB_DEVICE_HOST);
  CONST(WB_DEVICE_CUDA);
}

static void structs(void) {
  SIZE(wb_attach_options);
  FIELD(wb_attach_options, struct_size);
  FIELD(wb_attach_options, socket_path);
  FIELD(wb_attach_options, broker_name);
  FIELD(wb_attach_options, client_name);
  FIELD(wb_attach_options, timeout_ms);

  SIZE(wb_topic_options);
  FIELD(wb_topic_options, struct_size);
  FIELD(wb_topic_options, replicas);

  SIZE(wb_topic_info);
  FIELD(wb_topic_info, struct_size);
  FIELD(wb_topic_info, replicas);
  FIELD(wb_topic_info, name);
  FIELD(wb_topic_info, latest);
  FIELD(wb_topic_info, tensor_count);
  FIELD(wb_topic_info, publisher_pid);
  FIELD(wb_topic_info, dirty);
  FIELD(wb_topic_info, reserved);
  FIELD(wb_topic_info, bytes);
  FIELD(wb_topic_info, ranks);
  FIELD(wb_topic_info, layout_complete);
  FIELD(wb_topic_info, published_ns);

  SIZE(wb_tensor_spec);
  FIELD(wb_tensor_spec, struct_size);
  FIELD(wb_tensor_spec, dtype);
  FIELD(wb_tensor_spec, name);
  FIELD(wb_tensor_spec, ndim);
  FIELD(wb_tensor_spec, reserved);
  FIELD(wb_tensor_spec, shape);

  SIZE(wb_view_spec);
  FIELD(wb_view_spec, struct_size);
  FIELD(wb_view_spec, dtype);
  FIELD(wb_view_spec, name);
  FIELD(wb_view_spec, parent);
  FIELD(wb_view_spec, byte_offset);
  FIELD(wb_view_spec, ndim);
  FIELD(wb_view_spec, reserved);
  FIELD(wb_view_spec, shape);
  FIELD(wb_view_spec, strides);

  SIZE(wb_tensor_info);
  FIELD(wb_tensor_info, struct_size);
  FIELD(wb_tensor_info, index);
  FIELD(wb_tensor_info, name);
  FIELD(wb_tensor_info, dtype);
  FIELD(wb_tensor_info, ndim);
  FIELD(wb_tensor_info, shape);
  FIELD(wb_tensor_info, strides);
  FIELD(wb_tensor_info, nbytes);
  FIELD(wb_tensor_info, data);
  FIELD(wb_tensor_info, version);
  FIELD(wb_tensor_info, device_type);
  FIELD(wb_tensor_info, is_view);
  FIELD(wb_tensor_info, device_uuid);

  SIZE(wb_copy_target);
  FIELD(wb_copy_target, struct_size);
  FIELD(wb_copy_target, index);
  FIELD(wb_copy_target, name);
  FIELD(wb_copy_target, dst);
  FIELD(wb_copy_target, dst_bytes);
  FIELD(wb_copy_target, device);
  FIELD(wb_copy_target, dtype);
  FIELD(wb_copy_target, scale_layout);
  FIELD(wb_copy_target, block_rows);
  FIELD(wb_copy_target, block_cols);
  FIELD(wb_copy_target, reserved);
  FIELD(wb_copy_target, scale);
  FIELD(wb_copy_target, scale_bytes);

  SIZE(wb_rank_options);
  FIELD(wb_rank_options, struct_size);
  FIELD(wb_rank_options, replicas);
  FIELD(wb_rank_options, rank);
  FIELD(wb_rank_options, ranks);


  SIZE(wb_shard_spec);
  FIELD(wb_shard_spec, struct_size);
  FIELD(wb_shard_spec, dtype);
  FIELD(wb_shard_spec, name);
  FIELD(wb_shard_spec, ndim);
  FIELD(wb_shard_spec, flags);
  FIELD(wb_shard_spec, logical_shape);
  FIELD(wb_shard_spec, offset);
  FIELD(wb_shard_spec, extent);


  SIZE(wb_rank_info);
  FIELD(wb_rank_info, struct_size);
  FIELD(wb_rank_info, rank);
  FIELD(wb_rank_info, pid);
  FIELD(wb_rank_info, sealed);
  FIELD(wb_rank_info, shards);
  FIELD(wb_rank_info, dirty);
  FIELD(wb_rank_info, published);
  FIELD(wb_rank_info, writing);
  FIELD(wb_rank_info, published_ns);
  FIELD(wb_rank_info, begin_ns);
  FIELD(wb_rank_info, bytes);


  SIZE(wb_slice_part);
  FIELD(wb_slice_part, struct_size);
  FIELD(wb_slice_part, ndim);
  FIELD(wb_slice_part, name);
  FIELD(wb_slice_part, offset);
  FIELD(wb_slice_part, extent);
  FIELD(wb_slice_part, pad);


  SIZE(wb_slice_dest);
  FIELD(wb_slice_dest, struct_size);
  FIELD(wb_slice_dest, device);
  FIELD(wb_slice_dest, first_part);
  FIELD(wb_slice_dest, part_count);
  FIELD(wb_slice_dest, concat_dim);
  FIELD(wb_slice_dest, ndim);
  FIELD(wb_slice_dest, shape);
  FIELD(wb_slice_dest, strides);
  FIELD(wb_slice_dest, dtype);
  FIELD(wb_slice_dest, scale_layout);
  FIELD(wb_slice_dest, dst);
  FIELD(wb_slice_dest, dst_bytes);
  FIELD(wb_slice_dest, block_rows);
  FIELD(wb_slice_dest, block_cols);
  FIELD(wb_slice_dest, scale);
  FIELD(wb_slice_dest, scale_bytes);


  SIZE(wb_plan_info);
  FIELD(wb_plan_info, struct_size);
  FIELD(wb_plan_info, dests);
  FIELD(wb_plan_info, copies);
  FIELD(wb_plan_info, copies_2d);
  FIELD(wb_plan_info, bytes);
  FIELD(wb_plan_info, pad_bytes);
  FIELD(wb_plan_info, arms);
  FIELD(wb_plan_info, gpu_arms);
  FIELD(wb_plan_info, gpu_arms_claimed);

  SIZE(wb_client_info);
  FIELD(wb_client_info, struct_size);
  FIELD(wb_client_info, id);
  FIELD(wb_client_info, pid);
  FIELD(wb_client_info, topics_published);
  FIELD(wb_client_info, leases);
  FIELD(wb_client_info, reserved);
  FIELD(wb_client_info, name);

  SIZE(wb_lease_info);
  FIELD(wb_lease_info, struct_size);
  FIELD(wb_lease_info, client_id);
  FIELD(wb_lease_info, pid);
  FIELD(wb_lease_info, reserved);
  FIELD(wb_lease_info, topic);
  FIELD(wb_lease_info, version);
  FIELD(wb_lease_info, latest);
  FIELD(wb_lease_info, held_ns);

  SIZE(wb_broker_info);
  FIELD(wb_broker_info, struct_size);
  FIELD(wb_broker_info, pid);
  FIELD(wb_broker_info, version);
  FIELD(wb_broker_info, reserved);
  FIELD(wb_broker_info, name);
  FIELD(wb_broker_info, segment);
  FIELD(wb_broker_info, started_ns);
  FIELD(wb_broker_info, created_ns);
  FIELD(wb_broker_info, topics);
  FIELD(wb_broker_info, max_topics);
  FIELD(wb_broker_info, tensors);
  FIELD(wb_broker_info, max_tensors);
  FIELD(wb_broker_info, allocations);
  FIELD(wb_broker_info, max_allocations);
  FIELD(wb_broker_info, clients);
  FIELD(wb_broker_info, max_clients);
  FIELD(wb_broker_info, ranks);
  FIELD(wb_broker_info, max_ranks);
  FIELD(wb_broker_info, leases_per_client);
  FIELD(wb_broker_info, ring_slots);
  FIELD(wb_broker_info, publishes);
  FIELD(wb_broker_info, reclaims);
  FIELD(wb_broker_info, reclaimed_leases);
  FIELD(wb_broker_info, adoptions);
}

static void initializers(void) {
  const wb_attach_options attach = WB_ATTACH_OPTIONS_INIT;
  const wb_topic_options topic = WB_TOPIC_OPTIONS_INIT;
  const wb_topic_info topic_info = WB_TOPIC_INFO_INIT;
  const wb_tensor_spec tensor_spec = WB_TENSOR_SPEC_INIT;
  const wb_view_spec view_spec = WB_VIEW_SPEC_INIT;
  const wb_tensor_info tensor_info = WB_TENSOR_INFO_INIT;
  const wb_copy_target copy_target = WB_COPY_TARGET_INIT;
  const wb_client_info client_info = WB_CLIENT_INFO_INIT;
  const wb_lease_info lease_info = WB_LEASE_INFO_INIT;
  const wb_rank_options rank_options = WB_RANK_OPTIONS_INIT;
  const wb_shard_spec shard_spec = WB_SHARD_SPEC_INIT;
  const wb_rank_info rank_info = WB_RANK_INFO_INIT;
  const wb_slice_part slice_part = WB_SLICE_PART_INIT;
  const wb_slice_dest slice_dest = WB_SLICE_DEST_INIT;
  const wb_plan_info plan_info = WB_PLAN_INFO_INIT;
  const wb_broker_info broker_info = WB_BROKER_INFO_INIT;
  INIT(wb_attach_options, attach, struct_size);
  INIT(wb_attach_options, attach, timeout_ms);
  INIT(wb_topic_options, topic, struct_size);
  INIT(wb_topic_options, topic, replicas);
  INIT(wb_topic_info, topic_info, struct_size);
  INIT(wb_tensor_spec, tensor_spec, struct_size);
  INIT(wb_view_spec, view_spec, struct_size);
  INIT(wb_tensor_info, tensor_info, struct_size);
  INIT(wb_copy_target, copy_target, struct_size);
  INIT(wb_copy_target, copy_target, device);
  INIT(wb_client_info, client_info, struct_size);
  INIT(wb_lease_info, lease_info, struct_size);
  INIT(wb_rank_options, rank_options, struct_size);
  INIT(wb_rank_options, rank_options, replicas);
  INIT(wb_rank_options, rank_options, ranks);
  INIT(wb_shard_spec, shard_spec, struct_size);
  INIT(wb_rank_info, rank_info, struct_size);
  INIT(wb_slice_part, slice_part, struct_size);
  INIT(wb_slice_dest, slice_dest, struct_size);
  INIT(wb_slice_dest, slice_dest, device);
  INIT(wb_slice_dest, slice_dest, part_count);
  INIT(wb_plan_info, plan_info, struct_size);
  INIT(wb_broker_info, broker_info, struct_size);
}

int main(void) {
  constants();
  structs();
  initializers();
  return 0;
}
