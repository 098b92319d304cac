//! The safe API against a private broker: publish, wait, acquire, tensors and views, leases, errors.
mod common;

use std::os::raw::{c_int, c_short, c_ulong};
use std::os::unix::io::{AsRawFd, BorrowedFd};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::Broker;
use weightbus::{ffi, AttachOptions, Client, DType, Device, Error, TensorSpec, Topic, ViewSpec};

const SECOND: Option<Duration> = Some(Duration::from_secs(1));

/// Tensor "w" (f32[2, 3]) and "mask" (u8[5]).
fn create_model(client: &Client, name: &str, replicas: u32) -> Topic {
    let topic = client.create_topic(name, replicas).expect("create_topic");
    topic
        .alloc(&[
            TensorSpec { name: "w", dtype: DType::F32, shape: &[2, 3] },
            TensorSpec { name: "mask", dtype: DType::U8, shape: &[5] },
        ])
        .expect("alloc");
    topic
}

/// Publishes a version whose "w" holds `value` everywhere and whose metadata is "step=<value>".
fn publish(topic: &Topic, value: f32) -> u64 {
    let mut update = topic.begin(SECOND).expect("begin");
    update.tensor("w").unwrap().as_mut_slice::<f32>().unwrap().fill(value);
    update.publish(format!("step={value}").as_bytes()).expect("publish")
}

#[test]
fn a_published_version_reads_back_with_its_bytes_layout_and_metadata() {
    let broker = Broker::start();
    let client = broker.attach();
    let publisher = create_model(&client, "model", 2);
    let mut update = publisher.begin(SECOND).unwrap();
    assert_eq!(update.version(), 1);
    update.tensor("w").unwrap().as_mut_slice::<f32>().unwrap().copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    update.tensor("mask").unwrap().write(&[1, 0, 1, 0, 1]).unwrap();
    assert_eq!(update.publish(b"step=1").unwrap(), 1);

    let reader = client.open_topic("model").unwrap();
    assert_eq!(reader.latest().unwrap(), 1);
    let snapshot = reader.acquire(0, SECOND).unwrap();
    assert_eq!(snapshot.version(), 1);
    assert_eq!(snapshot.metadata(), b"step=1");
    let age = SystemTime::now().duration_since(snapshot.published_at()).expect("published in the past");
    assert!(age < Duration::from_secs(60), "published {age:?} ago");

    let w = snapshot.tensor("w").unwrap();
    assert_eq!(w.as_slice::<f32>().unwrap(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let info = w.info();
    assert_eq!((info.name(), info.dtype(), info.shape(), info.strides()), ("w", DType::F32, &[2, 3][..], &[3, 1][..]));
    assert_eq!((info.nbytes(), info.version(), info.device(), info.is_view()), (24, 1, Device::Host, false));
    assert_eq!(w.data_ptr() as usize % ffi::WB_ALIGNMENT, 0);
    assert_eq!(snapshot.tensor_at(info.index() + 1).unwrap().bytes().unwrap(), &[1, 0, 1, 0, 1]);
    assert_eq!(reader.tensor_info(0).unwrap().name(), "w");
    assert_eq!(reader.tensor_count().unwrap(), 2);
}

#[test]
fn every_tensor_at_once_and_where_they_lie() {
    let broker = Broker::start();
    let client = broker.attach();
    for replicas in [1, 2] {
        let name = format!("model{replicas}");
        let topic = create_model(&client, &name, replicas);
        publish(&topic, 1.0);
        let first = topic.acquire(0, SECOND).unwrap();
        let all = first.tensors().unwrap();
        assert_eq!(all.len(), 2);
        for (index, tensor) in all.iter().enumerate() {
            let one = first.tensor_at(index as u32).unwrap();
            assert_eq!((tensor.info().name(), tensor.data_ptr()), (one.info().name(), one.data_ptr()));
        }
        assert_eq!(all[0].as_slice::<f32>().unwrap(), &[1.0; 6]);
        let (place, address) = (first.place(), all[0].data_ptr() as usize);
        drop(all);
        drop(first); // R = 1: the next publish waits for no lease
        publish(&topic, 2.0);
        let second = topic.acquire(0, SECOND).unwrap();
        if replicas == 1 {
            // Every version of an R = 1 topic at one place: the same addresses.
            assert_ne!(place, 0);
            assert_eq!(second.place(), place);
            let w = &second.tensors().unwrap()[0];
            assert_eq!((w.data_ptr() as usize, w.as_slice::<f32>().unwrap()), (address, &[2.0; 6][..]));
        } else {
            assert_eq!((place, second.place()), (0, 0)); // each version in its own replica: look
        }
        let row = ViewSpec { name: "w0", parent: "w", dtype: DType::F32, byte_offset: 0, shape: &[3], strides: &[1] };
        topic.add_view(&row).unwrap();
        assert_eq!(second.tensors().unwrap().len(), 3); // a view added later is listed
    }
}

#[test]
fn unchanged_tensors_keep_their_bytes_and_version() {
    let broker = Broker::start();
    let client = broker.attach();
    let topic = create_model(&client, "model", 2);
    let mut update = topic.begin(SECOND).unwrap();
    update.tensor("mask").unwrap().write(&[9; 5]).unwrap();
    update.publish(&[]).unwrap();
    publish(&topic, 2.0);

    let snapshot = topic.acquire(2, SECOND).unwrap();
    let mask = snapshot.tensor("mask").unwrap();
    assert_eq!((mask.bytes().unwrap(), mask.info().version()), (&[9u8; 5][..], 1));
    assert_eq!(snapshot.tensor("w").unwrap().info().version(), 2);
}

#[test]
fn wait_returns_the_next_version_and_times_out_without_one() {
    let broker = Broker::start();
    let client = broker.attach();
    let topic = create_model(&client, "model", 2);
    let reader = client.open_topic("model").unwrap();
    match reader.wait(0, Some(Duration::from_millis(20))) {
        Err(Error::Timeout(message)) => assert!(message.contains("model"), "{message}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(50));
            publish(&topic, 1.0);
        });
        assert_eq!(reader.wait(0, Some(Duration::from_secs(5))).unwrap(), 1);
    });
    assert_eq!(reader.wait(0, Some(Duration::ZERO)).unwrap(), 1, "returns at once when one is newer");
}

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: c_short,
    revents: c_short,
}

extern "C" {
    fn poll(fds: *mut PollFd, nfds: c_ulong, timeout: c_int) -> c_int;
}

/// Whether `fd` becomes readable within `timeout_ms`.
fn readable(fd: BorrowedFd<'_>, timeout_ms: c_int) -> bool {
    const POLLIN: c_short = 1;
    let mut pfd = PollFd { fd: fd.as_raw_fd(), events: POLLIN, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { poll(&mut pfd, 1, timeout_ms) == 1 }
}

#[test]
fn the_notify_fd_becomes_readable_on_publish() {
    let broker = Broker::start();
    let client = broker.attach();
    let topic = create_model(&client, "model", 2);
    let reader = client.open_topic("model").unwrap();
    assert!(matches!(reader.notify_ack(), Err(Error::State(_))), "no notify fd yet");
    let fd = reader.notify_fd().unwrap();
    assert!(!readable(fd, 50), "nothing published yet");
    publish(&topic, 1.0);
    assert!(readable(fd, 5000), "no notification within 5 s");
    assert_eq!(reader.notify_ack().unwrap(), 1);
    assert!(!readable(fd, 0), "acknowledged: quiet until the next publish");
}

#[test]
fn views_show_their_parents_bytes() {
    let broker = Broker::start();
    let client = broker.attach();
    let topic = client.create_topic("fused", 2).unwrap();
    topic.alloc(&[TensorSpec { name: "qkv", dtype: DType::U32, shape: &[6, 4] }]).unwrap();
    let rows = ViewSpec {
        name: "k",
        parent: "qkv",
        dtype: DType::U32,
        byte_offset: 2 * 4 * 4,
        shape: &[2, 4],
        strides: &[4, 1],
    };
    let column =
        ViewSpec { name: "col0", parent: "qkv", dtype: DType::U32, byte_offset: 0, shape: &[6], strides: &[4] };
    topic.add_view(&rows).unwrap();
    topic.add_view(&column).unwrap();
    let mut update = topic.begin(SECOND).unwrap();
    let values: Vec<u32> = (0..24).collect();
    update.tensor("qkv").unwrap().as_mut_slice::<u32>().unwrap().copy_from_slice(&values);
    assert!(matches!(update.tensor("k"), Err(Error::State(_))), "a view is written through its parent");
    update.publish(&[]).unwrap();

    let snapshot = topic.acquire(0, SECOND).unwrap();
    let k = snapshot.tensor("k").unwrap();
    assert!(k.info().is_view());
    assert_eq!(k.as_slice::<u32>().unwrap(), &values[8..16]);
    let col0 = snapshot.tensor("col0").unwrap();
    let spanned = col0.as_slice::<u32>().unwrap();
    assert_eq!(spanned.len(), 21, "from the first element to one past the last");
    let picked: Vec<u32> = spanned.iter().step_by(4).copied().collect();
    assert_eq!(picked, [0, 4, 8, 12, 16, 20]);

    let too_far = ViewSpec { name: "bad", byte_offset: 4 * 24, ..rows };
    assert!(matches!(topic.add_view(&too_far), Err(Error::Size(_))));
}

#[test]
fn typed_access_checks_the_dtype_and_size() {
    let broker = Broker::start();
    let client = broker.attach();
    let topic = create_model(&client, "model", 2);
    let mut update = topic.begin(SECOND).unwrap();
    let mut mask = update.tensor("mask").unwrap();
    match mask.as_mut_slice::<f32>() {
        Err(Error::Dtype(message)) => assert!(message.contains("u8") && message.contains("f32"), "{message}"),
        other => panic!("expected a dtype error, got {other:?}"),
    }
    assert!(matches!(mask.write(&[0; 4]), Err(Error::Size(_))));
    update.publish(&[]).unwrap();
    let snapshot = topic.acquire(0, SECOND).unwrap();
    assert!(matches!(snapshot.tensor("w").unwrap().as_slice::<i32>(), Err(Error::Dtype(_))));
}

#[test]
fn errors_carry_their_code_and_the_library_message() {
    let broker = Broker::start();
    let client = broker.attach();
    let err = client.open_topic("absent").err().expect("no such topic");
    assert_eq!(err.code(), ffi::WB_E_NOT_FOUND);
    assert!(matches!(&err, Error::NotFound(m) if m.contains("absent")), "{err:?}");
    assert!(err.to_string().starts_with("WB_E_NOT_FOUND"), "{err}");
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(!boxed.to_string().is_empty());

    assert!(matches!(client.create_topic(&"x".repeat(ffi::WB_NAME_MAX + 1), 2), Err(Error::NameTooLong(_))));
    assert!(matches!(client.create_topic("a\0b", 2), Err(Error::Inval(_))));
    assert!(matches!(client.create_topic("model", ffi::WB_MAX_REPLICAS + 1), Err(Error::Inval(_))));
    let topic = create_model(&client, "model", 2);
    assert!(matches!(client.create_topic("model", 2), Err(Error::Busy(_))));
    let reader = client.open_topic("model").unwrap();
    assert!(matches!(reader.acquire(0, SECOND), Err(Error::NotFound(_))), "nothing published yet");
    assert!(matches!(reader.begin(SECOND), Err(Error::Role(_))));
    assert!(matches!(
        topic.alloc(&[TensorSpec { name: "deep", dtype: DType::U8, shape: &[1; ffi::WB_MAX_DIMS + 1] }]),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        topic.alloc(&[TensorSpec { name: "w", dtype: DType::F64, shape: &[2, 3] }]),
        Err(Error::Exists(_))
    ));
    let update = topic.begin(SECOND).unwrap();
    assert!(matches!(update.publish(&vec![0; ffi::WB_METADATA_MAX + 1]), Err(Error::Size(_))));
    assert_eq!(topic.latest().unwrap(), 0, "a failed publish aborts the update");
}

#[test]
fn every_code_maps_to_its_variant_and_back() {
    for code in (ffi::WB_E_LAYOUT..=ffi::WB_E_INVAL).rev() {
        let err = Error::from_code(code, "why".into());
        assert!(!matches!(err, Error::Unknown(..)), "code {code} has no variant");
        assert_eq!((err.code(), err.message()), (code, "why"));
    }
    assert_eq!(Error::from_code(-999, String::new()).code(), -999);
}

#[test]
fn dropping_an_unpublished_update_aborts_it() {
    let broker = Broker::start();
    let client = broker.attach();
    let topic = create_model(&client, "model", 2);
    publish(&topic, 1.0);
    {
        let mut update = topic.begin(SECOND).unwrap();
        update.tensor("w").unwrap().as_mut_slice::<f32>().unwrap().fill(99.0);
    }
    assert_eq!(topic.latest().unwrap(), 1);
    assert_eq!(topic.acquire(0, SECOND).unwrap().tensor("w").unwrap().as_slice::<f32>().unwrap(), &[1.0; 6]);
    assert_eq!(topic.begin(SECOND).unwrap().version(), 2, "the next update can begin");
}

#[test]
fn dropping_a_snapshot_releases_its_lease() {
    let broker = Broker::start();
    let client = broker.attach();
    let topic = create_model(&client, "in-place", 1);
    publish(&topic, 1.0);
    let snapshot = topic.acquire(0, SECOND).unwrap();
    let held = client.clients().unwrap().into_iter().map(|c| c.leases).sum::<u32>();
    assert_eq!(held, 1);
    assert!(matches!(topic.begin(Some(Duration::from_millis(50))), Err(Error::Timeout(_))), "R = 1: the lease blocks");
    drop(snapshot);
    assert_eq!(topic.begin(SECOND).unwrap().version(), 2);
}

#[test]
fn listing_shows_topics_and_clients() {
    let broker = Broker::start();
    let client = Client::attach(&broker.options("lister")).unwrap();
    let topic = create_model(&client, "listed", 3);
    publish(&topic, 1.0);
    let info = topic.info().unwrap();
    assert_eq!((info.name.as_str(), info.replicas, info.latest, info.tensor_count), ("listed", 3, 1, 2));
    assert!(!info.dirty && info.bytes > 0 && info.publisher_pid == std::process::id());
    assert_eq!(client.topics().unwrap(), vec![info]);
    let me = client.id().unwrap();
    let clients = client.clients().unwrap();
    let mine = clients.iter().find(|c| c.id == me).expect("this client is listed");
    assert_eq!((mine.name.as_str(), mine.topics_published, mine.pid), ("lister", 1, std::process::id()));
}

#[test]
fn attach_without_a_broker_is_a_connect_error() {
    let options = AttachOptions { socket_path: Some("/nonexistent/wb.sock".into()), ..Default::default() };
    assert!(matches!(Client::attach(&options), Err(Error::Connect(_))));
}

#[test]
fn a_dead_broker_ends_waits_with_broker_gone() {
    let mut broker = Broker::start();
    // The timeout is also how long a wait waits for a successor broker.
    let options = AttachOptions { timeout: Some(Duration::from_millis(300)), ..broker.options("rust-test") };
    let client = Client::attach(&options).expect("attach to the test broker");
    let topic = create_model(&client, "model", 2);
    broker.kill9();
    let started = Instant::now();
    assert!(matches!(topic.wait(0, None), Err(Error::BrokerGone(_))));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn version_and_dtypes_match_the_library() {
    assert_eq!(weightbus::version(), ffi::WB_VERSION);
    assert_eq!(weightbus::version_string(), ffi::WB_VERSION_STRING);
    assert_eq!((DType::BF16.name(), DType::BF16.size()), (Some("bf16"), 2));
    assert_eq!((DType::from_raw(0).name(), DType::from_raw(0).size()), (None, 0));
    assert_eq!(DType::F8E4M3.to_string(), "f8e4m3");
    let path = weightbus::default_socket_path(Some("job7")).unwrap();
    assert!(path.ends_with("job7.sock") || std::env::var_os("WEIGHTBUS_SOCKET").is_some(), "{}", path.display());
}

#[test]
fn remove_topic_removes_an_unused_topic_and_refuses_a_used_one() {
    let broker = Broker::start();
    let client = broker.attach();
    assert!(matches!(client.remove_topic("absent"), Err(Error::NotFound(_))));
    assert!(matches!(client.remove_topic(""), Err(Error::NameTooLong(_))));
    assert!(matches!(client.remove_topic("model\0"), Err(Error::Inval(_))));
    let topic = create_model(&client, "model", 2);
    publish(&topic, 1.0);
    assert!(matches!(client.remove_topic("model"), Err(Error::Busy(m)) if m.contains("publisher")));
    drop(topic);
    let reader = client.open_topic("model").unwrap();
    let snapshot = reader.acquire(0, SECOND).unwrap();
    assert!(matches!(client.remove_topic("model"), Err(Error::Busy(m)) if m.contains("lease")));
    drop(snapshot);
    client.remove_topic("model").expect("remove_topic");
    assert!(matches!(reader.latest(), Err(Error::NotFound(m)) if m.contains("was removed")));
    drop(reader);
    assert!(client.topics().unwrap().is_empty());
    create_model(&client, "model", 1); // the name is free again
}
