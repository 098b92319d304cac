package weightbus

/*
#include "wbgo.h"
*/
import "C"

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"
)

// AttachOptions say how to reach the broker; the zero value finds it the way wb_attach does with no options.
type AttachOptions struct {
	SocketPath string        // "": $WEIGHTBUS_SOCKET, else the default path of BrokerName
	BrokerName string        // "": $WEIGHTBUS_NAME, else "default"
	ClientName string        // the label `weightbus clients` shows (31 bytes kept); "": the program's name
	Timeout    time.Duration // how long to wait for each answer of the broker, and for a successor when it dies; 0: 5 s
}

// Client is one attachment to a broker. Close it after its topics.
type Client struct {
	c    *C.wb_client
	open int32 // topics opened and not closed yet
}

// Attach connects to the broker and maps its registry; opts may be nil. Errors: ErrConnect (nobody listens),
// ErrPerm, ErrABIMismatch, ErrNoSpace, ErrTimeout, ...
func Attach(opts *AttachOptions) (*Client, error) {
	if opts == nil {
		opts = &AttachOptions{}
	}
	raw := C.wbgo_attach_options()
	var names cStrings
	defer names.free()
	err := names.setUnlessEmpty(&raw.socket_path, opts.SocketPath)
	if err == nil {
		err = names.setUnlessEmpty(&raw.broker_name, opts.BrokerName)
	}
	if err == nil {
		err = names.setUnlessEmpty(&raw.client_name, opts.ClientName)
	}
	if err != nil {
		return nil, err
	}
	if opts.Timeout > 0 {
		raw.timeout_ms = millisCeil(opts.Timeout)
	}
	client := &Client{}
	if err := call(func() C.int { return C.wb_attach(&raw, &client.c) }); err != nil {
		return nil, err
	}
	return client, nil
}

// Close detaches. It refuses with ErrState while topics of this client are open; after Close, calls on the
// client fail with ErrInval.
func (c *Client) Close() error {
	if open := atomic.LoadInt32(&c.open); open > 0 {
		return &Error{Code: ErrState, Message: fmt.Sprintf("%d topic(s) of this client are still open: close them first", open)}
	}
	err := call(func() C.int { return C.wb_detach(c.c) })
	c.c = nil
	return err
}

// ID is this client's slot in the broker's client table (what `weightbus clients` shows).
func (c *Client) ID() (uint32, error) {
	var id C.uint32_t
	err := call(func() C.int { return C.wb_client_id(c.c, &id) })
	return uint32(id), err
}

// CreateTopic creates a topic with replicas copies of each tensor (1..MaxReplicas; 2 lets readers keep a
// version while the next is written) and becomes its publisher, or takes over one whose publisher is gone.
func (c *Client) CreateTopic(name string, replicas int) (*Topic, error) {
	cname, err := cString(name)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cname))
	opts := C.wbgo_topic_options()
	opts.replicas = C.uint32_t(replicas)
	topic := &Topic{client: c}
	if err := call(func() C.int { return C.wb_topic_create(c.c, cname, &opts, &topic.t) }); err != nil {
		return nil, err
	}
	atomic.AddInt32(&c.open, 1)
	return topic, nil
}

// CreateRank creates sharded topic name (one model published by ranks processes), or joins it, as rank rank and
// becomes that rank's publisher, taking it over from a publisher that is gone. Every rank gives the same ranks
// and replicas (ErrInval otherwise); ErrBusy while a live publisher holds the rank.
func (c *Client) CreateRank(name string, rank, ranks, replicas int) (*Topic, error) {
	cname, err := cString(name)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cname))
	opts := C.wbgo_rank_options()
	opts.rank, opts.ranks, opts.replicas = C.uint32_t(rank), C.uint32_t(ranks), C.uint32_t(replicas)
	topic := &Topic{client: c}
	if err := call(func() C.int { return C.wb_topic_create_rank(c.c, cname, &opts, &topic.t) }); err != nil {
		return nil, err
	}
	atomic.AddInt32(&c.open, 1)
	return topic, nil
}

// OpenTopic opens an existing topic as a reader. ErrNotFound until a publisher created it.
func (c *Client) OpenTopic(name string) (*Topic, error) {
	cname, err := cString(name)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cname))
	topic := &Topic{client: c}
	if err := call(func() C.int { return C.wb_topic_open(c.c, cname, &topic.t) }); err != nil {
		return nil, err
	}
	atomic.AddInt32(&c.open, 1)
	return topic, nil
}

// RemoveTopic removes an unused topic (wb_topic_remove): ErrBusy while a publisher holds it or readers hold
// snapshots of it, ErrNotFound if there is none. Topics of it still open get ErrNotFound from then on.
func (c *Client) RemoveTopic(name string) error {
	cname, err := cString(name)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cname))
	return call(func() C.int { return C.wb_topic_remove(c.c, cname) })
}

// TopicInfo is a topic's state (wb_topic_info).
type TopicInfo struct {
	Name         string
	Replicas     int
	Latest       uint64 // 0 before the first publish
	TensorCount  int    // tensors and views
	PublisherPID int    // 0 when no publisher is attached
	Dirty        bool   // true while acquires fail with ErrDirty
	Bytes        uint64 // storage of all replicas
	Ranks        int    // 0: a plain topic; N: sharded over N ranks
	// LayoutComplete (sharded): every rank sealed and the shards cover every logical tensor.
	LayoutComplete bool
}

func topicInfoFromC(raw *C.wb_topic_info) TopicInfo {
	return TopicInfo{
		Name:         C.GoString(&raw.name[0]),
		Replicas:     int(raw.replicas),
		Latest:       uint64(raw.latest),
		TensorCount:  int(raw.tensor_count),
		PublisherPID: int(raw.publisher_pid),
		Dirty:        raw.dirty != 0,
		Bytes:        uint64(raw.bytes),
		Ranks:        int(raw.ranks),

		LayoutComplete: raw.layout_complete != 0,
	}
}

// Topics lists every topic of the broker.
func (c *Client) Topics() ([]TopicInfo, error) {
	raw, err := list(func() C.wb_topic_info { return C.wbgo_topic_info() }, func(out *C.wb_topic_info, capacity C.uint32_t, count *C.uint32_t) C.int {
		return C.wb_list_topics(c.c, out, capacity, count)
	})
	topics := make([]TopicInfo, len(raw))
	for i := range raw {
		topics[i] = topicInfoFromC(&raw[i])
	}
	return topics, err
}

// ClientInfo is an attached client (wb_client_info).
type ClientInfo struct {
	ID              uint32
	PID             int
	Name            string
	TopicsPublished int // topics this client is the publisher of
	Leases          int // snapshots it holds now
}

// Clients lists every client attached to the broker, this one included.
func (c *Client) Clients() ([]ClientInfo, error) {
	raw, err := list(func() C.wb_client_info { return C.wbgo_client_info() }, func(out *C.wb_client_info, capacity C.uint32_t, count *C.uint32_t) C.int {
		return C.wb_list_clients(c.c, out, capacity, count)
	})
	clients := make([]ClientInfo, len(raw))
	for i, r := range raw {
		clients[i] = ClientInfo{
			ID:              uint32(r.id),
			PID:             int(r.pid),
			Name:            C.GoString(&r.name[0]),
			TopicsPublished: int(r.topics_published),
			Leases:          int(r.leases),
		}
	}
	return clients, err
}

// list runs a wb_list_* call until the buffer holds every entry: the count can grow between two calls.
func list[T any](initial func() T, listCall func(out *T, capacity C.uint32_t, count *C.uint32_t) C.int) ([]T, error) {
	entries := []T{}
	for {
		var out *T
		if len(entries) > 0 {
			out = &entries[0]
		}
		var count C.uint32_t
		if err := call(func() C.int { return listCall(out, C.uint32_t(len(entries)), &count) }); err != nil {
			return nil, err
		}
		if int(count) <= len(entries) {
			return entries[:count], nil
		}
		entries = make([]T, count)
		for i := range entries {
			entries[i] = initial()
		}
	}
}
