"""An attachment to a broker (weightbusd): the entry point of the package."""
from __future__ import annotations

import ctypes
import weakref
from typing import List, Optional

from . import _lib
from ._lib import AttachOptions, RankOptions, TopicOptions, lib, new
from ._closing import ClosesOnExit
from .errors import StateError, c_string
from .info import ClientInfo, LeaseInfo, TopicInfo, listing
from .topic import Topic


def connect(socket_path: Optional[str] = None, *, broker_name: Optional[str] = None,
            client_name: Optional[str] = None, timeout: float = 5.0) -> "Client":
    """Attaches to a broker. The socket is `socket_path`, else $WEIGHTBUS_SOCKET, else the default path of
    `broker_name` ($WEIGHTBUS_NAME, else "default"). `client_name` labels this process in `weightbus clients`;
    `timeout` (seconds) bounds each request to the broker, and how long blocking calls wait for a successor
    when the broker dies (the client resumes with one that adopts the segment; see docs/reliability.md).
    Raises ConnectError when no broker listens."""
    options = new(AttachOptions)
    options.socket_path = c_string(socket_path, "socket_path") if socket_path else None
    options.broker_name = c_string(broker_name, "broker_name") if broker_name else None
    options.client_name = c_string(client_name, "client_name") if client_name else None
    options.timeout_ms = _lib.timeout_ms(timeout)
    handle = ctypes.c_void_p()
    lib.wb_attach(ctypes.byref(options), ctypes.byref(handle))
    return Client(handle)


class Client(ClosesOnExit):
    """One attachment to a broker. Close it (or use it as a context manager) to detach; a client that is
    garbage-collected detaches too."""

    def __init__(self, handle: ctypes.c_void_p) -> None:
        self._handle: Optional[ctypes.c_void_p] = handle
        self._topics: "weakref.WeakSet[Topic]" = weakref.WeakSet()
        client_id = ctypes.c_uint32()
        lib.wb_client_id(handle, ctypes.byref(client_id))
        self.id: int = client_id.value

    def __repr__(self) -> str:
        return f"<weightbus.Client {self.id}{'' if self._handle is not None else ' (closed)'}>"

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None:
            lib.wb_detach(self._handle)

    @property
    def handle(self) -> ctypes.c_void_p:
        """The wb_client * of the C API."""
        self._check_open()
        assert self._handle is not None
        return self._handle

    @property
    def closed(self) -> bool:
        return self._handle is None

    def close(self) -> None:
        """Aborts open updates, closes every topic and detaches. Raises StateError, and stays attached, while
        snapshots or tensors taken from them are alive (arrays made from them would point at unmapped memory)."""
        if self._handle is None:
            return
        busy = [f"{t.name!r}: {t._live_snapshots}" for t in self._topics if t._live_snapshots]
        if busy:
            raise StateError("WB_E_STATE: snapshots are still held (by with blocks, or by tensors/arrays taken "
                             f"from them) on topics {', '.join(busy)}: release or delete them before closing")
        for topic in list(self._topics):
            topic.close()
        handle, self._handle = self._handle, None
        lib.wb_detach(handle)

    def _check_open(self) -> None:
        if self._handle is None:
            raise StateError("WB_E_STATE: the client is closed")

    def _topic_closed(self, topic: Topic) -> None:
        self._topics.discard(topic)

    def create_topic(self, name: str, replicas: int = 2) -> Topic:
        """Creates topic `name` (or takes it over from a publisher that is gone) and becomes its publisher.
        `replicas` R: 1 shares in place (an update waits for readers to let go); R >= 2 lets readers keep
        version v while v+1 is written. Raises BusyError while another publisher holds it."""
        options = new(TopicOptions)
        options.replicas = replicas
        handle = ctypes.c_void_p()
        lib.wb_topic_create(self.handle, c_string(name), ctypes.byref(options), ctypes.byref(handle))
        return self._track(Topic(self, handle, name, publisher=True))

    def create_rank(self, name: str, rank: int, ranks: int, replicas: int = 2) -> Topic:
        """Creates sharded topic `name` (one model published by `ranks` processes), or joins it, as rank `rank`,
        and becomes that rank's publisher (taking it over from a publisher that is gone: register the same
        shards again). Every rank gives the same `ranks` and `replicas`. Then: Topic.alloc_shards, updates as on
        a plain topic (Update.shard); a version is visible once every rank published it. Raises BusyError
        while a live publisher holds the rank; see docs/sharded-models.md."""
        options = new(RankOptions)
        options.replicas, options.rank, options.ranks = replicas, rank, ranks
        handle = ctypes.c_void_p()
        lib.wb_topic_create_rank(self.handle, c_string(name), ctypes.byref(options), ctypes.byref(handle))
        return self._track(Topic(self, handle, name, publisher=True, rank=rank))

    def open_topic(self, name: str) -> Topic:
        """Opens topic `name` as a reader (NotFoundError if no publisher created it)."""
        handle = ctypes.c_void_p()
        lib.wb_topic_open(self.handle, c_string(name), ctypes.byref(handle))
        return self._track(Topic(self, handle, name, publisher=False))

    def remove_topic(self, name: str) -> None:
        """Removes topic `name`, which must be unused: BusyError while a publisher holds it or readers hold
        snapshots of it, NotFoundError if there is none. Its shared memory is freed once no process maps it;
        handles of it still open raise NotFoundError from then on (see wb_topic_remove)."""
        lib.wb_topic_remove(self.handle, c_string(name))

    def _track(self, topic: Topic) -> Topic:
        self._topics.add(topic)
        return topic

    def topics(self) -> List[TopicInfo]:
        """Every topic of the broker."""
        return [TopicInfo._from_c(t) for t in listing(lib.wb_list_topics, self.handle, _lib.TopicInfo)]

    def clients(self) -> List[ClientInfo]:
        """Every client attached to the broker."""
        return [ClientInfo._from_c(c) for c in listing(lib.wb_list_clients, self.handle, _lib.ClientInfo)]

    def leases(self) -> List[LeaseInfo]:
        """Every lease held now, by any client: holder, topic, version, lag behind the latest, hold time."""
        return [LeaseInfo._from_c(lease) for lease in listing(lib.wb_list_leases, self.handle, _lib.LeaseInfo)]
