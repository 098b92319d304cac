//! One side of the cross-language check (`tests/bindings/cross-language.sh`); the Go program
//! `bindings/go/examples/crosslanguage` is the other, and both agree on this model:
//!
//!   tensor k   name    dtype  shape
//!   0          w       f32    [32, 16]
//!   1          ids     i64    [50]
//!   2          mask    u8     [77]
//!   view       w.row3  f32    [16]      row 3 of w (byte offset 192)
//!
//! Byte j of tensor k in version v is (7v + 13k + j) mod 251, and version v's metadata is "step=<v>".
//!
//! usage: cross_language publish|read TOPIC VERSIONS   (the broker from $WEIGHTBUS_SOCKET)
use std::env;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use weightbus::{AttachOptions, Client, DType, Error, Snapshot, TensorSpec, Topic, ViewSpec};

const TENSORS: [TensorSpec<'static>; 3] = [
    TensorSpec { name: "w", dtype: DType::F32, shape: &[32, 16] },
    TensorSpec { name: "ids", dtype: DType::I64, shape: &[50] },
    TensorSpec { name: "mask", dtype: DType::U8, shape: &[77] },
];
const ROW3: ViewSpec<'static> =
    ViewSpec { name: "w.row3", parent: "w", dtype: DType::F32, byte_offset: 3 * 16 * 4, shape: &[16], strides: &[1] };
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

fn pattern(version: u64, tensor: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| ((7 * version + 13 * tensor as u64 + j as u64) % 251) as u8).collect()
}

fn publish(client: &Client, topic_name: &str, versions: u64) -> Result<(), Error> {
    let topic = client.create_topic(topic_name, 2)?;
    topic.alloc(&TENSORS)?;
    topic.add_view(&ROW3)?;
    for _ in 0..versions {
        let mut update = topic.begin(TIMEOUT)?;
        let version = update.version();
        for (k, spec) in TENSORS.iter().enumerate() {
            let mut tensor = update.tensor(spec.name)?;
            let len = tensor.info().nbytes();
            tensor.write(&pattern(version, k, len))?;
        }
        update.publish(format!("step={version}").as_bytes())?;
        thread::sleep(Duration::from_millis(5)); // let the reader see several versions, not only the last
    }
    println!("rust publisher: published {versions} versions of '{topic_name}'");
    Ok(())
}

/// The reader may start first: wait until the publisher has created the topic.
fn open_when_created(client: &Client, topic_name: &str) -> Result<Topic, Error> {
    let deadline = Instant::now() + TIMEOUT.unwrap();
    loop {
        match client.open_topic(topic_name) {
            Err(Error::NotFound(_)) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            result => return result,
        }
    }
}

/// Every tensor, the view and the metadata of the snapshot, against the pattern. Returns the mismatches.
fn verify(snapshot: &Snapshot) -> Result<Vec<String>, Error> {
    let v = snapshot.version();
    let mut problems = Vec::new();
    if snapshot.metadata() != format!("step={v}").as_bytes() {
        problems.push(format!("version {v}: metadata {:?}", String::from_utf8_lossy(snapshot.metadata())));
    }
    for (k, spec) in TENSORS.iter().enumerate() {
        let tensor = snapshot.tensor(spec.name)?;
        let info = tensor.info();
        if info.dtype() != spec.dtype || info.shape() != spec.shape {
            problems.push(format!("version {v}: {} is {} {:?}", spec.name, info.dtype(), info.shape()));
        } else if tensor.bytes()? != pattern(v, k, info.nbytes()).as_slice() {
            problems.push(format!("version {v}: the bytes of {} differ", spec.name));
        }
    }
    let row = snapshot.tensor(ROW3.name)?.bytes()?;
    if row != &pattern(v, 0, 256)[192..] {
        problems.push(format!("version {v}: the view {} differs from its parent's row", ROW3.name));
    }
    Ok(problems)
}

fn read(client: &Client, topic_name: &str, versions: u64) -> Result<Vec<String>, Error> {
    let topic = open_when_created(client, topic_name)?;
    let (mut seen, mut verified) = (0, 0);
    while seen < versions {
        topic.wait(seen, TIMEOUT)?;
        let snapshot = topic.acquire(0, TIMEOUT)?; // the latest: an older one may have expired meanwhile
        let problems = verify(&snapshot)?;
        if !problems.is_empty() {
            return Ok(problems);
        }
        seen = snapshot.version();
        verified += 1;
    }
    println!("rust reader: verified {verified} versions of '{topic_name}', the last {seen}");
    Ok(Vec::new())
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().collect();
    let (role, topic, versions) = match (args.get(1), args.get(2), args.get(3).and_then(|n| n.parse().ok())) {
        (Some(role), Some(topic), Some(versions)) if role == "publish" || role == "read" => {
            (role.as_str(), topic.as_str(), versions)
        }
        _ => {
            eprintln!("usage: cross_language publish|read TOPIC VERSIONS");
            return ExitCode::from(2);
        }
    };
    let result = Client::attach(&AttachOptions { client_name: Some(format!("rust-{role}")), ..Default::default() })
        .and_then(|client| match role {
            "publish" => publish(&client, topic, versions).map(|_| Vec::new()),
            _ => read(&client, topic, versions),
        });
    match result {
        Ok(problems) if problems.is_empty() => ExitCode::SUCCESS,
        Ok(problems) => {
            problems.iter().for_each(|p| eprintln!("rust {role}: MISMATCH: {p}"));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("rust {role}: {e}");
            ExitCode::FAILURE
        }
    }
}
