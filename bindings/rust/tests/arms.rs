//! Arms (`Plan::arm`, `Armed`): a reader's plan leases the version after the one it had before that version is
//! published; the publisher writes it all the same (R = 1 in place), the wait copies it into the plan's buffers,
//! a timeout keeps the arm, and a dropped arm releases its lease.
mod common;

use std::time::{Duration, Instant};

use common::Broker;
use weightbus::{Client, DType, Error, Plan, ScaleLayout, SliceDest, SlicePart, TensorSpec, Topic};

const SECOND: Option<Duration> = Some(Duration::from_secs(1));
const LOOK: Option<Duration> = Some(Duration::ZERO);
const SHORT: Option<Duration> = Some(Duration::from_millis(100));
const ELEMS: usize = 64;

/// A topic of one tensor "w" (u32[ELEMS]) and R replicas, with version 1 published.
fn create_model(client: &Client, replicas: u32) -> Topic {
    let topic = client.create_topic("model", replicas).expect("create_topic");
    topic.alloc(&[TensorSpec { name: "w", dtype: DType::U32, shape: &[ELEMS as i64] }]).expect("alloc");
    assert_eq!(publish(&topic, 1), 1);
    topic
}

/// Version v's bytes of "w": v * 1000 + i.
fn values(v: u64) -> Vec<u32> {
    (0..ELEMS as u32).map(|i| v as u32 * 1000 + i).collect()
}

/// Publishes the next version, which must be `expected`, with its values; fails if begin waits over a second.
fn publish(topic: &Topic, expected: u64) -> u64 {
    let mut update = topic.begin(SECOND).expect("begin");
    assert_eq!(update.version(), expected);
    update.tensor("w").unwrap().as_mut_slice::<u32>().unwrap().copy_from_slice(&values(expected));
    update.publish(b"").expect("publish")
}

/// The reader's plan: all of "w" into one host buffer.
fn whole_plan(reader: &Topic) -> Plan {
    let part = SlicePart { name: "w".into(), offset: vec![0], extent: vec![ELEMS as i64], pad: 0 };
    let dest = SliceDest {
        dtype: DType::U32,
        shape: vec![ELEMS as i64],
        parts: vec![part],
        concat_dim: 0,
        scale_layout: ScaleLayout::None,
    };
    Plan::new(reader, &[dest]).expect("plan")
}

/// A private broker with model "model" (R replicas, version 1 published) and a reader's plan of all of "w".
struct Setup {
    publisher: Topic,
    plan: Plan,
    _broker: Broker, // dropped last
}

fn setup(replicas: u32) -> Setup {
    let broker = Broker::start();
    let client = broker.attach();
    let publisher = create_model(&client, replicas);
    let plan = whole_plan(&client.open_topic("model").unwrap());
    Setup { publisher, plan, _broker: broker }
}

#[test]
fn r1_arm_of_the_next_version_waits_for_its_publish_and_copies_it() {
    let Setup { publisher, mut plan, _broker } = setup(1);

    let mut armed = plan.arm(1).unwrap();
    assert_eq!(armed.version().unwrap(), 2);
    assert!(!armed.on_stream().unwrap(), "a host plan: the wait copies");
    match armed.wait(LOOK) {
        Err(Error::Timeout(message)) => assert!(message.contains("armed version 2"), "{message}"),
        other => panic!("a look before version 2 exists: {:?}", other.map(|s| s.version())),
    }
    assert_eq!(armed.version().unwrap(), 2, "a timeout keeps the arm");
    assert!(matches!(armed.wait(LOOK), Err(Error::Timeout(_))));

    let start = Instant::now();
    assert_eq!(publish(&publisher, 2), 2); // R = 1: begin does not wait for a lease of an unpublished version
    assert!(start.elapsed() < Duration::from_secs(1), "begin waited {:?} for the arm", start.elapsed());

    let snapshot = armed.wait(SECOND).unwrap();
    assert_eq!(snapshot.version(), 2);
    assert_eq!(snapshot.tensor("w").unwrap().as_slice::<u32>().unwrap(), &values(2)[..]);
    assert!(matches!(armed.version(), Err(Error::State(_))), "spent by the wait");
    assert!(matches!(armed.on_stream(), Err(Error::State(_))), "spent by the wait");
    assert!(matches!(armed.wait(LOOK), Err(Error::State(_))), "spent by the wait");
    drop(armed);
    assert_eq!(plan.output::<u32>(0).unwrap(), &values(2)[..]);

    // The snapshot holds version 2 as any lease: R = 1's next begin waits for its release.
    assert!(matches!(publisher.begin(SHORT), Err(Error::Timeout(_))));
    drop(snapshot);
    assert_eq!(publish(&publisher, 3), 3);
    let info = plan.info().unwrap(); // the plan counts its arms: a host arm (the wait copied)
    assert_eq!((info.arms, info.gpu_arms, info.gpu_arms_claimed), (1, 0, 0));
}

#[test]
fn arm_of_a_version_already_published_copies_it_at_once() {
    let Setup { publisher, mut plan, _broker } = setup(2);
    assert_eq!(publish(&publisher, 2), 2);
    for after in [0, 1] {
        let mut armed = plan.arm(after).unwrap();
        assert_eq!(armed.version().unwrap(), 2, "after {after}");
        let snapshot = armed.wait(LOOK).unwrap();
        assert_eq!(snapshot.version(), 2, "after {after}");
        drop(armed);
        assert_eq!(plan.output::<u32>(0).unwrap(), &values(2)[..], "after {after}");
    }
    // The usual loop: a temporary arm, its snapshot kept.
    let snapshot = plan.arm(0).unwrap().wait(LOOK).unwrap();
    assert_eq!((snapshot.version(), plan.output::<u32>(0).unwrap()), (2, &values(2)[..]));
}

#[test]
fn arm_after_a_version_beyond_the_latest_is_refused() {
    let Setup { mut plan, _broker, .. } = setup(1);
    match plan.arm(5) {
        Err(Error::Inval(message)) => assert!(message.contains("after=5 is beyond its latest version, 1"), "{message}"),
        Err(other) => panic!("arm(5) at latest 1: {other}"),
        Ok(armed) => panic!("arm(5) at latest 1 armed version {:?}", armed.version()),
    }
    assert_eq!(plan.arm(1).unwrap().version().unwrap(), 2, "the plan arms again after a refusal");
}

#[test]
fn an_arm_dropped_without_a_wait_releases_its_lease() {
    let Setup { publisher, mut plan, _broker } = setup(1);

    let mut armed = plan.arm(1).unwrap();
    assert!(matches!(armed.wait(LOOK), Err(Error::Timeout(_))));
    assert_eq!(publish(&publisher, 2), 2);
    // Version 2 is published: the arm's lease pins it, so R = 1's next begin waits.
    assert!(matches!(publisher.begin(SHORT), Err(Error::Timeout(_))));
    drop(armed);
    assert_eq!(publish(&publisher, 3), 3);
    assert_eq!(plan.output::<u32>(0).unwrap(), &[0; ELEMS][..], "a withdrawn arm copies nothing");

    // An arm dropped before its version is published holds nothing either.
    let armed = plan.arm(3).unwrap();
    assert_eq!(armed.version().unwrap(), 4);
    drop(armed);
    assert_eq!(publish(&publisher, 4), 4);
    assert_eq!(publish(&publisher, 5), 5);
}
