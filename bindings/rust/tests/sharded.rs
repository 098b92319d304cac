//! Sharded topics: two ranks publish their halves, a reader's plan copies a slice across both; the split rows.
mod common;

use std::time::Duration;

use common::Broker;
use weightbus::{
    parts_merged, parts_qkv, split, split_vocab, DType, Error, Plan, ScaleLayout, ShardSpec, SliceDest, SlicePart,
    SplitMode,
};

const SECOND: Option<Duration> = Some(Duration::from_secs(5));

#[test]
fn two_ranks_publish_one_version_and_a_plan_reads_across_them() {
    let broker = Broker::start();
    let (first, second) = (broker.attach(), broker.attach());
    let ranks = [first.create_rank("m", 0, 2, 2).unwrap(), second.create_rank("m", 1, 2, 2).unwrap()];
    assert!(matches!(second.create_rank("m", 1, 3, 2), Err(Error::Inval(_))));
    for (r, topic) in ranks.iter().enumerate() {
        let offset = [2 * r as i64, 0];
        topic
            .alloc_shards(&[ShardSpec {
                name: "w",
                dtype: DType::F32,
                logical_shape: &[4, 2],
                offset: &offset,
                extent: &[2, 2],
                replicated: false,
            }])
            .unwrap();
    }
    for topic in &ranks {
        topic.seal_rank(SECOND).unwrap();
    }
    for (r, topic) in ranks.iter().enumerate() {
        let mut update = topic.begin(SECOND).unwrap();
        let base = 4.0 * r as f32;
        update.shard("w", 0).unwrap().as_mut_slice::<f32>().unwrap().copy_from_slice(&[
            base,
            base + 1.0,
            base + 2.0,
            base + 3.0,
        ]);
        assert!(matches!(update.shard("w", 1), Err(Error::NotFound(_))));
        assert_eq!(update.publish(b"").unwrap(), 1);
    }
    let reader = first.open_topic("m").unwrap();
    assert_eq!(reader.wait(0, SECOND).unwrap(), 1);
    let info = reader.info().unwrap();
    assert_eq!((info.ranks, info.layout_complete), (2, true));
    let rank = reader.rank_info(1).unwrap();
    assert_eq!((rank.rank, rank.sealed, rank.published), (1, true, 1));
    assert!(matches!(reader.rank_info(2), Err(Error::Inval(_))));
    let shard = reader.shard_box("w", 1, 0).unwrap();
    assert_eq!((shard.offset, shard.extent, shard.replicated), (vec![2, 0], vec![2, 2], false));
    assert!(matches!(reader.shard_box("w", 1, 1), Err(Error::NotFound(_))));

    let snapshot = reader.acquire(1, SECOND).unwrap();
    assert_eq!(snapshot.shard("w", 1, 0).unwrap().as_slice::<f32>().unwrap(), &[4.0, 5.0, 6.0, 7.0]);
    let column = SlicePart { name: "w".into(), offset: vec![0, 1], extent: vec![4, 1], pad: 0 };
    let dest = SliceDest {
        dtype: DType::F32,
        shape: vec![4, 1],
        parts: vec![column],
        concat_dim: 0,
        scale_layout: ScaleLayout::None,
    };
    let mut plan = Plan::new(&reader, &[dest.clone()]).unwrap();
    plan.run(&snapshot).unwrap();
    assert_eq!(plan.output::<f32>(0).unwrap(), &[1.0, 3.0, 5.0, 7.0]);
    assert_eq!(plan.info().unwrap().bytes, 16);
    assert!(matches!(plan.output::<u8>(0), Err(Error::Dtype(_))));
    let wrong = SliceDest { dtype: DType::F16, ..dest };
    assert!(matches!(Plan::new(&reader, &[wrong]), Err(Error::Dtype(_))));
}

#[test]
fn split_rows_follow_the_frameworks() {
    // (size, rank, ranks, mode) -> (offset, extent)
    let rows = [
        (10, 3, 4, SplitMode::Chunk, (9, 1)),
        (3, 3, 4, SplitMode::Chunk, (3, 0)),
        (4096, 1, 2, SplitMode::Even, (2048, 2048)),
    ];
    for (size, rank, ranks, mode, want) in rows {
        assert_eq!(split(size, rank, ranks, mode).unwrap(), want, "{size} {rank}/{ranks} {mode:?}");
    }
    assert!(matches!(split(10, 0, 4, SplitMode::Even), Err(Error::Shape(_))));
    assert_eq!(split_vocab(1000, 64, 1, 2).unwrap(), (512, 488, 512));
    let qkv = parts_qkv(["q", "k", "v"], 32, 8, 128, 4096, 1, 2).unwrap();
    assert_eq!((qkv[0].name.as_str(), qkv[0].offset[0], qkv[1].extent[0]), ("q", 2048, 512));
    let merged = parts_merged(&["gate", "up"], &[8, 8], 4, 1, 2).unwrap();
    assert_eq!((merged[1].name.as_str(), merged[1].offset.clone()), ("up", vec![4, 0]));
    assert!(matches!(parts_merged(&["gate"], &[8, 8], 4, 1, 2), Err(Error::Inval(_))));
}
