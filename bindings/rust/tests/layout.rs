//! `weightbus::ffi` against the C compiler: every constant, struct size, field offset and `_INIT` value must
//! equal what `tests/bindings/layout-dump` (built from the header, path in `$WEIGHTBUS_LAYOUT`) prints.
use std::collections::BTreeMap;
use std::env;
use std::mem::size_of;
use std::process::Command;
use std::ptr::addr_of;

use weightbus::ffi;

type Facts = BTreeMap<String, String>;

/// "kind name value" lines into name → value, keyed by "kind name".
fn c_facts() -> Facts {
    let exe = env::var_os("WEIGHTBUS_LAYOUT")
        .expect("set WEIGHTBUS_LAYOUT to the layout-dump binary (tests/bindings/run.sh does)");
    let output = Command::new(&exe).output().expect("run layout-dump");
    assert!(output.status.success(), "layout-dump failed");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (key, value) = line.rsplit_once(' ').expect("a 'kind name value' line");
            (key.to_string(), value.to_string())
        })
        .collect()
}

macro_rules! constants {
    ($facts:ident, $($name:ident),* $(,)?) => {
        $($facts.insert(concat!("const ", stringify!($name)).to_string(), ffi::$name.to_string());)*
    };
}

macro_rules! layout {
    ($facts:ident, $type:ident { $($field:ident),* $(,)? }) => {{
        let value = ffi::$type::default();
        let base = addr_of!(value) as usize;
        $facts.insert(concat!("size ", stringify!($type)).to_string(), size_of::<ffi::$type>().to_string());
        $($facts.insert(
            concat!("offset ", stringify!($type), ".", stringify!($field)).to_string(),
            (addr_of!(value.$field) as usize - base).to_string(),
        );)*
    }};
}

macro_rules! init {
    ($facts:ident, $type:ident { $($field:ident),* $(,)? }) => {{
        let value = ffi::$type::default();
        $($facts.insert(
            concat!("init ", stringify!($type), ".", stringify!($field)).to_string(),
            value.$field.to_string(),
        );)*
    }};
}

fn rust_facts() -> Facts {
    let mut facts = Facts::new();
    constants!(facts, WB_VERSION_MAJOR, WB_VERSION_MINOR, WB_VERSION_PATCH, WB_VERSION, WB_VERSION_STRING);
    constants!(facts, WB_NAME_MAX, WB_MAX_DIMS, WB_MAX_REPLICAS, WB_METADATA_MAX, WB_ALIGNMENT, WB_VERSION_MAX);
    constants!(facts, WB_CUDA_ALIGNMENT, WB_MAX_RANKS, WB_SHARD_REPLICATED, WB_SPLIT_EVEN, WB_SPLIT_CHUNK);
    constants!(facts, WB_SCALE_NONE, WB_SCALE_TENSOR, WB_SCALE_CHANNEL, WB_SCALE_BLOCK);
    constants!(
        facts,
        WB_OK,
        WB_E_INVAL,
        WB_E_NOMEM,
        WB_E_NOT_FOUND,
        WB_E_EXISTS,
        WB_E_NAME_TOO_LONG,
        WB_E_DTYPE,
        WB_E_SHAPE,
        WB_E_SIZE,
        WB_E_NOSPC,
        WB_E_ROLE,
        WB_E_BUSY,
        WB_E_TIMEOUT,
        WB_E_BROKER_GONE,
        WB_E_ABI_MISMATCH,
        WB_E_DIRTY,
        WB_E_EXPIRED,
        WB_E_STATE,
        WB_E_PERM,
        WB_E_PROTOCOL,
        WB_E_IO,
        WB_E_NO_CUDA,
        WB_E_STALE,
        WB_E_CONNECT,
        WB_E_CUDA,
        WB_E_LAYOUT,
    );
    constants!(
        facts,
        WB_DTYPE_BOOL,
        WB_DTYPE_U8,
        WB_DTYPE_I8,
        WB_DTYPE_I16,
        WB_DTYPE_I32,
        WB_DTYPE_I64,
        WB_DTYPE_F16,
        WB_DTYPE_BF16,
        WB_DTYPE_F32,
        WB_DTYPE_F64,
        WB_DTYPE_F8E4M3,
        WB_DTYPE_F8E5M2,
        WB_DTYPE_U16,
        WB_DTYPE_U32,
        WB_DTYPE_U64,
    );
    constants!(facts, WB_DEVICE_HOST, WB_DEVICE_CUDA);

    layout!(facts, wb_attach_options { struct_size, socket_path, broker_name, client_name, timeout_ms });
    layout!(facts, wb_topic_options { struct_size, replicas });
    layout!(
        facts,
        wb_topic_info {
            struct_size,
            replicas,
            name,
            latest,
            tensor_count,
            publisher_pid,
            dirty,
            reserved,
            bytes,
            ranks,
            layout_complete,
            published_ns
        }
    );
    layout!(facts, wb_tensor_spec { struct_size, dtype, name, ndim, reserved, shape });
    layout!(facts, wb_view_spec { struct_size, dtype, name, parent, byte_offset, ndim, reserved, shape, strides });
    layout!(
        facts,
        wb_tensor_info {
            struct_size,
            index,
            name,
            dtype,
            ndim,
            shape,
            strides,
            nbytes,
            data,
            version,
            device_type,
            is_view,
            device_uuid
        }
    );
    layout!(
        facts,
        wb_copy_target {
            struct_size,
            index,
            name,
            dst,
            dst_bytes,
            device,
            dtype,
            scale_layout,
            block_rows,
            block_cols,
            reserved,
            scale,
            scale_bytes
        }
    );
    layout!(facts, wb_client_info { struct_size, id, pid, topics_published, leases, reserved, name });
    layout!(facts, wb_lease_info { struct_size, client_id, pid, reserved, topic, version, latest, held_ns });
    layout!(facts, wb_rank_options { struct_size, replicas, rank, ranks });
    layout!(facts, wb_shard_spec { struct_size, dtype, name, ndim, flags, logical_shape, offset, extent });
    layout!(
        facts,
        wb_rank_info {
            struct_size,
            rank,
            pid,
            sealed,
            shards,
            dirty,
            published,
            writing,
            published_ns,
            begin_ns,
            bytes
        }
    );
    layout!(facts, wb_slice_part { struct_size, ndim, name, offset, extent, pad });
    layout!(
        facts,
        wb_slice_dest {
            struct_size,
            device,
            first_part,
            part_count,
            concat_dim,
            ndim,
            shape,
            strides,
            dtype,
            scale_layout,
            dst,
            dst_bytes,
            block_rows,
            block_cols,
            scale,
            scale_bytes
        }
    );
    layout!(facts, wb_plan_info { struct_size, dests, copies, copies_2d, bytes, pad_bytes, arms, gpu_arms, gpu_arms_claimed });
    layout!(
        facts,
        wb_broker_info {
            struct_size,
            pid,
            version,
            reserved,
            name,
            segment,
            started_ns,
            created_ns,
            topics,
            max_topics,
            tensors,
            max_tensors,
            allocations,
            max_allocations,
            clients,
            max_clients,
            ranks,
            max_ranks,
            leases_per_client,
            ring_slots,
            publishes,
            reclaims,
            reclaimed_leases,
            adoptions
        }
    );

    init!(facts, wb_attach_options { struct_size, timeout_ms });
    init!(facts, wb_topic_options { struct_size, replicas });
    init!(facts, wb_topic_info { struct_size });
    init!(facts, wb_tensor_spec { struct_size });
    init!(facts, wb_view_spec { struct_size });
    init!(facts, wb_tensor_info { struct_size });
    init!(facts, wb_copy_target { struct_size, device });
    init!(facts, wb_client_info { struct_size });
    init!(facts, wb_lease_info { struct_size });
    init!(facts, wb_rank_options { struct_size, replicas, ranks });
    init!(facts, wb_shard_spec { struct_size });
    init!(facts, wb_rank_info { struct_size });
    init!(facts, wb_slice_part { struct_size });
    init!(facts, wb_slice_dest { struct_size, device, part_count });
    init!(facts, wb_plan_info { struct_size });
    init!(facts, wb_broker_info { struct_size });
    facts
}

#[test]
fn ffi_declarations_match_the_c_header() {
    let (c, rust) = (c_facts(), rust_facts());
    let mut problems = Vec::new();
    for (key, c_value) in &c {
        match rust.get(key) {
            None => problems.push(format!("{key}: {c_value} in C, missing in weightbus::ffi")),
            Some(v) if v != c_value => problems.push(format!("{key}: {c_value} in C, {v} in weightbus::ffi")),
            Some(_) => {}
        }
    }
    problems.extend(rust.keys().filter(|k| !c.contains_key(*k)).map(|k| format!("{k}: not in the C header")));
    assert!(problems.is_empty(), "weightbus::ffi drifted from weightbus.h:\n{}", problems.join("\n"));
}

#[test]
fn every_error_code_of_the_c_header_has_its_variant() {
    for (key, value) in c_facts() {
        let name = match key.strip_prefix("const WB_E_") {
            Some(name) => name,
            None => continue,
        };
        let code: std::os::raw::c_int = value.parse().expect("an integer code");
        let error = weightbus::Error::from_code(code, String::new());
        assert!(
            !matches!(error, weightbus::Error::Unknown(..)),
            "WB_E_{name} ({code}) has no weightbus::Error variant"
        );
        assert_eq!(error.code(), code, "WB_E_{name}");
    }
}
