// Package cabi reports the header's structs as cgo lays them out for Go code, for the layout test of package
// weightbus (a _test.go file cannot use cgo). Compare with tests/bindings/layout-dump, which prints what the
// C compiler sees.
package cabi

/*
#cgo pkg-config: weightbus
#include <weightbus/weightbus.h>
*/
import "C"

import "unsafe"

// Layout maps "size TYPE" and "offset TYPE.FIELD" to bytes, keyed as layout-dump prints them.
func Layout() map[string]uintptr {
	var attach C.wb_attach_options
	var topicOptions C.wb_topic_options
	var topicInfo C.wb_topic_info
	var tensorSpec C.wb_tensor_spec
	var viewSpec C.wb_view_spec
	var tensorInfo C.wb_tensor_info
	var copyTarget C.wb_copy_target
	var clientInfo C.wb_client_info
	var leaseInfo C.wb_lease_info
	var rankOptions C.wb_rank_options
	var shardSpec C.wb_shard_spec
	var rankInfo C.wb_rank_info
	var slicePart C.wb_slice_part
	var sliceDest C.wb_slice_dest
	var planInfo C.wb_plan_info
	var brokerInfo C.wb_broker_info
	return map[string]uintptr{
		"size wb_attach_options":               unsafe.Sizeof(attach),
		"offset wb_attach_options.struct_size": unsafe.Offsetof(attach.struct_size),
		"offset wb_attach_options.socket_path": unsafe.Offsetof(attach.socket_path),
		"offset wb_attach_options.broker_name": unsafe.Offsetof(attach.broker_name),
		"offset wb_attach_options.client_name": unsafe.Offsetof(attach.client_name),
		"offset wb_attach_options.timeout_ms":  unsafe.Offsetof(attach.timeout_ms),

		"size wb_topic_options":               unsafe.Sizeof(topicOptions),
		"offset wb_topic_options.struct_size": unsafe.Offsetof(topicOptions.struct_size),
		"offset wb_topic_options.replicas":    unsafe.Offsetof(topicOptions.replicas),

		"size wb_topic_info":                   unsafe.Sizeof(topicInfo),
		"offset wb_topic_info.struct_size":     unsafe.Offsetof(topicInfo.struct_size),
		"offset wb_topic_info.replicas":        unsafe.Offsetof(topicInfo.replicas),
		"offset wb_topic_info.name":            unsafe.Offsetof(topicInfo.name),
		"offset wb_topic_info.latest":          unsafe.Offsetof(topicInfo.latest),
		"offset wb_topic_info.tensor_count":    unsafe.Offsetof(topicInfo.tensor_count),
		"offset wb_topic_info.publisher_pid":   unsafe.Offsetof(topicInfo.publisher_pid),
		"offset wb_topic_info.dirty":           unsafe.Offsetof(topicInfo.dirty),
		"offset wb_topic_info.reserved":        unsafe.Offsetof(topicInfo.reserved),
		"offset wb_topic_info.ranks":           unsafe.Offsetof(topicInfo.ranks),
		"offset wb_topic_info.layout_complete": unsafe.Offsetof(topicInfo.layout_complete),
		"offset wb_topic_info.bytes":           unsafe.Offsetof(topicInfo.bytes),
		"offset wb_topic_info.published_ns":    unsafe.Offsetof(topicInfo.published_ns),

		"size wb_tensor_spec":               unsafe.Sizeof(tensorSpec),
		"offset wb_tensor_spec.struct_size": unsafe.Offsetof(tensorSpec.struct_size),
		"offset wb_tensor_spec.dtype":       unsafe.Offsetof(tensorSpec.dtype),
		"offset wb_tensor_spec.name":        unsafe.Offsetof(tensorSpec.name),
		"offset wb_tensor_spec.ndim":        unsafe.Offsetof(tensorSpec.ndim),
		"offset wb_tensor_spec.reserved":    unsafe.Offsetof(tensorSpec.reserved),
		"offset wb_tensor_spec.shape":       unsafe.Offsetof(tensorSpec.shape),

		"size wb_view_spec":               unsafe.Sizeof(viewSpec),
		"offset wb_view_spec.struct_size": unsafe.Offsetof(viewSpec.struct_size),
		"offset wb_view_spec.dtype":       unsafe.Offsetof(viewSpec.dtype),
		"offset wb_view_spec.name":        unsafe.Offsetof(viewSpec.name),
		"offset wb_view_spec.parent":      unsafe.Offsetof(viewSpec.parent),
		"offset wb_view_spec.byte_offset": unsafe.Offsetof(viewSpec.byte_offset),
		"offset wb_view_spec.ndim":        unsafe.Offsetof(viewSpec.ndim),
		"offset wb_view_spec.reserved":    unsafe.Offsetof(viewSpec.reserved),
		"offset wb_view_spec.shape":       unsafe.Offsetof(viewSpec.shape),
		"offset wb_view_spec.strides":     unsafe.Offsetof(viewSpec.strides),

		"size wb_tensor_info":               unsafe.Sizeof(tensorInfo),
		"offset wb_tensor_info.struct_size": unsafe.Offsetof(tensorInfo.struct_size),
		"offset wb_tensor_info.index":       unsafe.Offsetof(tensorInfo.index),
		"offset wb_tensor_info.name":        unsafe.Offsetof(tensorInfo.name),
		"offset wb_tensor_info.dtype":       unsafe.Offsetof(tensorInfo.dtype),
		"offset wb_tensor_info.ndim":        unsafe.Offsetof(tensorInfo.ndim),
		"offset wb_tensor_info.shape":       unsafe.Offsetof(tensorInfo.shape),
		"offset wb_tensor_info.strides":     unsafe.Offsetof(tensorInfo.strides),
		"offset wb_tensor_info.nbytes":      unsafe.Offsetof(tensorInfo.nbytes),
		"offset wb_tensor_info.data":        unsafe.Offsetof(tensorInfo.data),
		"offset wb_tensor_info.version":     unsafe.Offsetof(tensorInfo.version),
		"offset wb_tensor_info.device_type": unsafe.Offsetof(tensorInfo.device_type),
		"offset wb_tensor_info.is_view":     unsafe.Offsetof(tensorInfo.is_view),
		"offset wb_tensor_info.device_uuid": unsafe.Offsetof(tensorInfo.device_uuid),

		"size wb_copy_target":                unsafe.Sizeof(copyTarget),
		"offset wb_copy_target.struct_size":  unsafe.Offsetof(copyTarget.struct_size),
		"offset wb_copy_target.index":        unsafe.Offsetof(copyTarget.index),
		"offset wb_copy_target.name":         unsafe.Offsetof(copyTarget.name),
		"offset wb_copy_target.dst":          unsafe.Offsetof(copyTarget.dst),
		"offset wb_copy_target.dst_bytes":    unsafe.Offsetof(copyTarget.dst_bytes),
		"offset wb_copy_target.device":       unsafe.Offsetof(copyTarget.device),
		"offset wb_copy_target.dtype":        unsafe.Offsetof(copyTarget.dtype),
		"offset wb_copy_target.scale_layout": unsafe.Offsetof(copyTarget.scale_layout),
		"offset wb_copy_target.block_rows":   unsafe.Offsetof(copyTarget.block_rows),
		"offset wb_copy_target.block_cols":   unsafe.Offsetof(copyTarget.block_cols),
		"offset wb_copy_target.reserved":     unsafe.Offsetof(copyTarget.reserved),
		"offset wb_copy_target.scale":        unsafe.Offsetof(copyTarget.scale),
		"offset wb_copy_target.scale_bytes":  unsafe.Offsetof(copyTarget.scale_bytes),

		"size wb_client_info":                    unsafe.Sizeof(clientInfo),
		"offset wb_client_info.struct_size":      unsafe.Offsetof(clientInfo.struct_size),
		"offset wb_client_info.id":               unsafe.Offsetof(clientInfo.id),
		"offset wb_client_info.pid":              unsafe.Offsetof(clientInfo.pid),
		"offset wb_client_info.topics_published": unsafe.Offsetof(clientInfo.topics_published),
		"offset wb_client_info.leases":           unsafe.Offsetof(clientInfo.leases),
		"offset wb_client_info.reserved":         unsafe.Offsetof(clientInfo.reserved),
		"offset wb_client_info.name":             unsafe.Offsetof(clientInfo.name),

		"size wb_lease_info":               unsafe.Sizeof(leaseInfo),
		"offset wb_lease_info.struct_size": unsafe.Offsetof(leaseInfo.struct_size),
		"offset wb_lease_info.client_id":   unsafe.Offsetof(leaseInfo.client_id),
		"offset wb_lease_info.pid":         unsafe.Offsetof(leaseInfo.pid),
		"offset wb_lease_info.reserved":    unsafe.Offsetof(leaseInfo.reserved),
		"offset wb_lease_info.topic":       unsafe.Offsetof(leaseInfo.topic),
		"offset wb_lease_info.version":     unsafe.Offsetof(leaseInfo.version),
		"offset wb_lease_info.latest":      unsafe.Offsetof(leaseInfo.latest),
		"offset wb_lease_info.held_ns":     unsafe.Offsetof(leaseInfo.held_ns),

		"size wb_rank_options":               unsafe.Sizeof(rankOptions),
		"offset wb_rank_options.struct_size": unsafe.Offsetof(rankOptions.struct_size),
		"offset wb_rank_options.replicas":    unsafe.Offsetof(rankOptions.replicas),
		"offset wb_rank_options.rank":        unsafe.Offsetof(rankOptions.rank),
		"offset wb_rank_options.ranks":       unsafe.Offsetof(rankOptions.ranks),

		"size wb_shard_spec":                 unsafe.Sizeof(shardSpec),
		"offset wb_shard_spec.struct_size":   unsafe.Offsetof(shardSpec.struct_size),
		"offset wb_shard_spec.dtype":         unsafe.Offsetof(shardSpec.dtype),
		"offset wb_shard_spec.name":          unsafe.Offsetof(shardSpec.name),
		"offset wb_shard_spec.ndim":          unsafe.Offsetof(shardSpec.ndim),
		"offset wb_shard_spec.flags":         unsafe.Offsetof(shardSpec.flags),
		"offset wb_shard_spec.logical_shape": unsafe.Offsetof(shardSpec.logical_shape),
		"offset wb_shard_spec.offset":        unsafe.Offsetof(shardSpec.offset),
		"offset wb_shard_spec.extent":        unsafe.Offsetof(shardSpec.extent),

		"size wb_rank_info":                unsafe.Sizeof(rankInfo),
		"offset wb_rank_info.struct_size":  unsafe.Offsetof(rankInfo.struct_size),
		"offset wb_rank_info.rank":         unsafe.Offsetof(rankInfo.rank),
		"offset wb_rank_info.pid":          unsafe.Offsetof(rankInfo.pid),
		"offset wb_rank_info.sealed":       unsafe.Offsetof(rankInfo.sealed),
		"offset wb_rank_info.shards":       unsafe.Offsetof(rankInfo.shards),
		"offset wb_rank_info.dirty":        unsafe.Offsetof(rankInfo.dirty),
		"offset wb_rank_info.published":    unsafe.Offsetof(rankInfo.published),
		"offset wb_rank_info.writing":      unsafe.Offsetof(rankInfo.writing),
		"offset wb_rank_info.published_ns": unsafe.Offsetof(rankInfo.published_ns),
		"offset wb_rank_info.begin_ns":     unsafe.Offsetof(rankInfo.begin_ns),
		"offset wb_rank_info.bytes":        unsafe.Offsetof(rankInfo.bytes),

		"size wb_slice_part":               unsafe.Sizeof(slicePart),
		"offset wb_slice_part.struct_size": unsafe.Offsetof(slicePart.struct_size),
		"offset wb_slice_part.ndim":        unsafe.Offsetof(slicePart.ndim),
		"offset wb_slice_part.name":        unsafe.Offsetof(slicePart.name),
		"offset wb_slice_part.offset":      unsafe.Offsetof(slicePart.offset),
		"offset wb_slice_part.extent":      unsafe.Offsetof(slicePart.extent),
		"offset wb_slice_part.pad":         unsafe.Offsetof(slicePart.pad),

		"size wb_slice_dest":                unsafe.Sizeof(sliceDest),
		"offset wb_slice_dest.struct_size":  unsafe.Offsetof(sliceDest.struct_size),
		"offset wb_slice_dest.device":       unsafe.Offsetof(sliceDest.device),
		"offset wb_slice_dest.first_part":   unsafe.Offsetof(sliceDest.first_part),
		"offset wb_slice_dest.part_count":   unsafe.Offsetof(sliceDest.part_count),
		"offset wb_slice_dest.concat_dim":   unsafe.Offsetof(sliceDest.concat_dim),
		"offset wb_slice_dest.ndim":         unsafe.Offsetof(sliceDest.ndim),
		"offset wb_slice_dest.shape":        unsafe.Offsetof(sliceDest.shape),
		"offset wb_slice_dest.strides":      unsafe.Offsetof(sliceDest.strides),
		"offset wb_slice_dest.dtype":        unsafe.Offsetof(sliceDest.dtype),
		"offset wb_slice_dest.scale_layout": unsafe.Offsetof(sliceDest.scale_layout),
		"offset wb_slice_dest.dst":          unsafe.Offsetof(sliceDest.dst),
		"offset wb_slice_dest.dst_bytes":    unsafe.Offsetof(sliceDest.dst_bytes),
		"offset wb_slice_dest.block_rows":   unsafe.Offsetof(sliceDest.block_rows),
		"offset wb_slice_dest.block_cols":   unsafe.Offsetof(sliceDest.block_cols),
		"offset wb_slice_dest.scale":        unsafe.Offsetof(sliceDest.scale),
		"offset wb_slice_dest.scale_bytes":  unsafe.Offsetof(sliceDest.scale_bytes),

		"size wb_plan_info":                    unsafe.Sizeof(planInfo),
		"offset wb_plan_info.struct_size":      unsafe.Offsetof(planInfo.struct_size),
		"offset wb_plan_info.dests":            unsafe.Offsetof(planInfo.dests),
		"offset wb_plan_info.copies":           unsafe.Offsetof(planInfo.copies),
		"offset wb_plan_info.copies_2d":        unsafe.Offsetof(planInfo.copies_2d),
		"offset wb_plan_info.bytes":            unsafe.Offsetof(planInfo.bytes),
		"offset wb_plan_info.pad_bytes":        unsafe.Offsetof(planInfo.pad_bytes),
		"offset wb_plan_info.arms":             unsafe.Offsetof(planInfo.arms),
		"offset wb_plan_info.gpu_arms":         unsafe.Offsetof(planInfo.gpu_arms),
		"offset wb_plan_info.gpu_arms_claimed": unsafe.Offsetof(planInfo.gpu_arms_claimed),

		"size wb_broker_info":                     unsafe.Sizeof(brokerInfo),
		"offset wb_broker_info.struct_size":       unsafe.Offsetof(brokerInfo.struct_size),
		"offset wb_broker_info.pid":               unsafe.Offsetof(brokerInfo.pid),
		"offset wb_broker_info.version":           unsafe.Offsetof(brokerInfo.version),
		"offset wb_broker_info.reserved":          unsafe.Offsetof(brokerInfo.reserved),
		"offset wb_broker_info.name":              unsafe.Offsetof(brokerInfo.name),
		"offset wb_broker_info.segment":           unsafe.Offsetof(brokerInfo.segment),
		"offset wb_broker_info.started_ns":        unsafe.Offsetof(brokerInfo.started_ns),
		"offset wb_broker_info.created_ns":        unsafe.Offsetof(brokerInfo.created_ns),
		"offset wb_broker_info.topics":            unsafe.Offsetof(brokerInfo.topics),
		"offset wb_broker_info.max_topics":        unsafe.Offsetof(brokerInfo.max_topics),
		"offset wb_broker_info.tensors":           unsafe.Offsetof(brokerInfo.tensors),
		"offset wb_broker_info.max_tensors":       unsafe.Offsetof(brokerInfo.max_tensors),
		"offset wb_broker_info.allocations":       unsafe.Offsetof(brokerInfo.allocations),
		"offset wb_broker_info.max_allocations":   unsafe.Offsetof(brokerInfo.max_allocations),
		"offset wb_broker_info.clients":           unsafe.Offsetof(brokerInfo.clients),
		"offset wb_broker_info.max_clients":       unsafe.Offsetof(brokerInfo.max_clients),
		"offset wb_broker_info.ranks":             unsafe.Offsetof(brokerInfo.ranks),
		"offset wb_broker_info.max_ranks":         unsafe.Offsetof(brokerInfo.max_ranks),
		"offset wb_broker_info.leases_per_client": unsafe.Offsetof(brokerInfo.leases_per_client),
		"offset wb_broker_info.ring_slots":        unsafe.Offsetof(brokerInfo.ring_slots),
		"offset wb_broker_info.publishes":         unsafe.Offsetof(brokerInfo.publishes),
		"offset wb_broker_info.reclaims":          unsafe.Offsetof(brokerInfo.reclaims),
		"offset wb_broker_info.reclaimed_leases":  unsafe.Offsetof(brokerInfo.reclaimed_leases),
		"offset wb_broker_info.adoptions":         unsafe.Offsetof(brokerInfo.adoptions),
	}
}
