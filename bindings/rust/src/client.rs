//! `Client`: one attachment to a broker, and what it lists.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{check, Result};
use crate::ffi;
use crate::topic::{Topic, TopicInfo};
use crate::{as_ptr_or_null, c_string, fixed_string, timeout_ms};

/// How to reach the broker. `Default` finds it the way `wb_attach` does with no options.
#[derive(Clone, Debug, Default)]
pub struct AttachOptions {
    /// The control socket. `None`: `$WEIGHTBUS_SOCKET`, else the default path of `broker_name`.
    pub socket_path: Option<PathBuf>,
    /// `None`: `$WEIGHTBUS_NAME`, else `"default"`.
    pub broker_name: Option<String>,
    /// The label `weightbus clients` shows (31 bytes are kept). `None`: the program's name.
    pub client_name: Option<String>,
    /// How long to wait for each answer of the broker, and how long blocking calls wait for a successor when
    /// the broker dies (the client resumes with one that adopts its segment). `None`: the library's default (5 s).
    pub timeout: Option<Duration>,
}

/// The attachment itself; topics hold it too, so that it is detached after the last of them is closed.
pub(crate) struct ClientHandle(NonNull<ffi::wb_client>);

// SAFETY: the C API allows a client to be used from several threads at once.
unsafe impl Send for ClientHandle {}
unsafe impl Sync for ClientHandle {}

impl ClientHandle {
    pub(crate) fn as_ptr(&self) -> *mut ffi::wb_client {
        self.0.as_ptr()
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        // Fails only for NULL. Every topic, update and snapshot holds this handle, so none is left to release.
        unsafe { ffi::wb_detach(self.as_ptr()) };
    }
}

/// One attachment to a broker (`wb_attach`); dropping it detaches once its topics are dropped too.
///
/// ```no_run
/// use weightbus::{AttachOptions, Client};
///
/// # fn main() -> weightbus::Result<()> {
/// let options = AttachOptions { socket_path: Some("/run/wb/train0.sock".into()), ..Default::default() };
/// let client = Client::attach(&options)?;
/// for topic in client.topics()? {
///     println!("{} at version {}", topic.name, topic.latest);
/// }
/// # Ok(()) }
/// ```
pub struct Client {
    handle: Arc<ClientHandle>,
}

impl Client {
    /// Connects to the broker and maps its registry. Errors: `Connect` (nobody listens), `Perm`,
    /// `AbiMismatch`, `NoSpc`, `Timeout`, ...
    pub fn attach(options: &AttachOptions) -> Result<Client> {
        let socket_path = options.socket_path.as_ref().map(|p| c_string(p.as_os_str().as_bytes())).transpose()?;
        let broker_name = options.broker_name.as_deref().map(|n| c_string(n.as_bytes())).transpose()?;
        let client_name = options.client_name.as_deref().map(|n| c_string(n.as_bytes())).transpose()?;
        let mut raw = ffi::wb_attach_options {
            socket_path: as_ptr_or_null(&socket_path),
            broker_name: as_ptr_or_null(&broker_name),
            client_name: as_ptr_or_null(&client_name),
            ..Default::default()
        };
        if let Some(timeout) = options.timeout {
            raw.timeout_ms = timeout_ms(Some(timeout));
        }
        let mut client = ptr::null_mut();
        check(unsafe { ffi::wb_attach(&raw, &mut client) })?;
        let handle = NonNull::new(client).expect("wb_attach succeeded without a client");
        Ok(Client { handle: Arc::new(ClientHandle(handle)) })
    }

    /// This client's slot in the broker's client table (what `weightbus clients` shows).
    pub fn id(&self) -> Result<u32> {
        let mut id = 0;
        check(unsafe { ffi::wb_client_id(self.handle.as_ptr(), &mut id) })?;
        Ok(id)
    }

    /// Creates a topic with `replicas` copies of each tensor (1..=`WB_MAX_REPLICAS`; 2 lets readers keep a
    /// version while the next is written) and becomes its publisher, or takes over one whose publisher is gone.
    pub fn create_topic(&self, name: &str, replicas: u32) -> Result<Topic> {
        let name = c_string(name.as_bytes())?;
        let options = ffi::wb_topic_options { replicas, ..Default::default() };
        let mut topic = ptr::null_mut();
        check(unsafe { ffi::wb_topic_create(self.handle.as_ptr(), name.as_ptr(), &options, &mut topic) })?;
        Ok(Topic::new(topic, self.handle.clone()))
    }

    /// Creates sharded topic `name` (one model published by `ranks` processes), or joins it, as rank `rank` and
    /// becomes that rank's publisher, taking it over from a publisher that is gone. Every rank gives the same
    /// `ranks` and `replicas` (`Error::Inval` otherwise); `Error::Busy` while a live publisher holds the rank.
    pub fn create_rank(&self, name: &str, rank: u32, ranks: u32, replicas: u32) -> Result<Topic> {
        let name = c_string(name.as_bytes())?;
        let options = ffi::wb_rank_options { replicas, rank, ranks, ..Default::default() };
        let mut topic = ptr::null_mut();
        check(unsafe { ffi::wb_topic_create_rank(self.handle.as_ptr(), name.as_ptr(), &options, &mut topic) })?;
        Ok(Topic::new(topic, self.handle.clone()))
    }

    /// Opens an existing topic as a reader. `Error::NotFound` until a publisher created it.
    pub fn open_topic(&self, name: &str) -> Result<Topic> {
        let name = c_string(name.as_bytes())?;
        let mut topic = ptr::null_mut();
        check(unsafe { ffi::wb_topic_open(self.handle.as_ptr(), name.as_ptr(), &mut topic) })?;
        Ok(Topic::new(topic, self.handle.clone()))
    }

    /// Removes an unused topic (`wb_topic_remove`): `Error::Busy` while a publisher holds it or readers hold
    /// snapshots of it, `Error::NotFound` if there is none. Handles of it still open get `Error::NotFound`.
    pub fn remove_topic(&self, name: &str) -> Result<()> {
        let name = c_string(name.as_bytes())?;
        check(unsafe { ffi::wb_topic_remove(self.handle.as_ptr(), name.as_ptr()) })
    }

    /// Every topic of the broker.
    pub fn topics(&self) -> Result<Vec<TopicInfo>> {
        let raw =
            list(|out, capacity, count| unsafe { ffi::wb_list_topics(self.handle.as_ptr(), out, capacity, count) })?;
        Ok(raw.iter().map(TopicInfo::from_raw).collect())
    }

    /// Every client attached to the broker, this one included.
    pub fn clients(&self) -> Result<Vec<ClientInfo>> {
        let raw =
            list(|out, capacity, count| unsafe { ffi::wb_list_clients(self.handle.as_ptr(), out, capacity, count) })?;
        Ok(raw.iter().map(ClientInfo::from_raw).collect())
    }
}

/// An attached client (`wb_client_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    pub id: u32,
    pub pid: u32,
    pub name: String,
    /// Topics this client is the publisher of.
    pub topics_published: u32,
    /// Leases (snapshots) it holds now.
    pub leases: u32,
}

impl ClientInfo {
    fn from_raw(raw: &ffi::wb_client_info) -> ClientInfo {
        ClientInfo {
            id: raw.id,
            pid: raw.pid,
            name: fixed_string(&raw.name),
            topics_published: raw.topics_published,
            leases: raw.leases,
        }
    }
}

/// Runs a `wb_list_*` call until the buffer holds every entry: the count can grow between two calls.
fn list<T: Default + Clone>(call: impl Fn(*mut T, u32, *mut u32) -> i32) -> Result<Vec<T>> {
    let mut entries: Vec<T> = Vec::new();
    loop {
        let mut count = 0;
        check(call(entries.as_mut_ptr(), entries.len() as u32, &mut count))?;
        if count as usize <= entries.len() {
            entries.truncate(count as usize);
            return Ok(entries);
        }
        entries = vec![T::default(); count as usize];
    }
}
