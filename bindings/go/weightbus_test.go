package weightbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// createModel creates a topic with tensor "w" (f32[2, 3]) and "mask" (u8[5]).
func createModel(t *testing.T, client *Client, name string, replicas int) *Topic {
	t.Helper()
	topic, err := client.CreateTopic(name, replicas)
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	t.Cleanup(func() { topic.Close() })
	err = topic.Alloc(TensorSpec{Name: "w", DType: DTypeF32, Shape: []int64{2, 3}}, TensorSpec{Name: "mask", DType: DTypeU8, Shape: []int64{5}})
	if err != nil {
		t.Fatalf("Alloc: %v", err)
	}
	return topic
}

// publish publishes a version whose "w" holds value everywhere.
func publish(t *testing.T, topic *Topic, value float32) uint64 {
	t.Helper()
	return must(publishValue(topic, value))(t)
}

// publishValue is publish for goroutines other than the test's, which must not call t.Fatal.
func publishValue(topic *Topic, value float32) (uint64, error) {
	update, err := topic.Begin(context.Background())
	if err != nil {
		return 0, err
	}
	defer update.Abort()
	w, err := update.Tensor("w")
	if err != nil {
		return 0, err
	}
	values, err := Slice[float32](w)
	if err != nil {
		return 0, err
	}
	for i := range values {
		values[i] = value
	}
	return update.Publish(nil)
}

// must turns (value, error) into value, failing the test on the error.
func must[T any](value T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return value
	}
}

func attachedClient(t *testing.T) (*testBroker, *Client) {
	broker := startBroker(t)
	client := broker.attach(t)
	t.Cleanup(func() { client.Close() })
	return broker, client
}

func TestPublishedVersionReadsBackWithBytesLayoutAndMetadata(t *testing.T) {
	_, client := attachedClient(t)
	publisher := createModel(t, client, "model", 2)
	ctx := context.Background()
	update := must(publisher.Begin(ctx))(t)
	if update.Version() != 1 {
		t.Fatalf("first update is version %d", update.Version())
	}
	copy(must(Slice[float32](must(update.Tensor("w"))(t)))(t), []float32{1, 2, 3, 4, 5, 6})
	copy(must(must(update.Tensor("mask"))(t).Bytes())(t), []byte{1, 0, 1, 0, 1})
	if v := must(update.Publish([]byte("step=1")))(t); v != 1 {
		t.Fatalf("published version %d", v)
	}

	reader := must(client.OpenTopic("model"))(t)
	defer reader.Close()
	snapshot := must(reader.Acquire(ctx, 0))(t)
	defer snapshot.Close()
	if snapshot.Version() != 1 || string(snapshot.Metadata()) != "step=1" {
		t.Fatalf("version %d, metadata %q", snapshot.Version(), snapshot.Metadata())
	}
	if age := time.Since(snapshot.PublishedAt()); age < 0 || age > time.Minute {
		t.Fatalf("published %v ago", age)
	}
	w := must(snapshot.Tensor("w"))(t)
	if got := must(Slice[float32](w))(t); !reflect.DeepEqual(got, []float32{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("w = %v", got)
	}
	want := TensorInfo{Index: 0, Name: "w", DType: DTypeF32, Shape: []int64{2, 3}, Strides: []int64{3, 1}, NBytes: 24, Version: 1, Device: DeviceHost}
	if !reflect.DeepEqual(w.TensorInfo, want) {
		t.Fatalf("w is %+v, want %+v", w.TensorInfo, want)
	}
	if w.Pointer()%Alignment != 0 {
		t.Fatalf("w at %#x is not aligned", w.Pointer())
	}
	if mask := must(must(snapshot.TensorAt(1))(t).Bytes())(t); string(mask) != "\x01\x00\x01\x00\x01" {
		t.Fatalf("mask = %v", mask)
	}
	if info := must(reader.TensorInfo(1))(t); info.Name != "mask" || must(reader.TensorCount())(t) != 2 {
		t.Fatalf("layout query: %+v", info)
	}
}

func TestEveryTensorAtOnceAndWhereTheyLie(t *testing.T) {
	_, client := attachedClient(t)
	ctx := context.Background()
	for _, replicas := range []int{1, 2} {
		topic := createModel(t, client, fmt.Sprintf("model%d", replicas), replicas)
		publish(t, topic, 1)
		first := must(topic.Acquire(ctx, 0))(t)
		all := must(first.Tensors())(t)
		if len(all) != 2 {
			t.Fatalf("R = %d: %d tensors", replicas, len(all))
		}
		for i, tensor := range all {
			if one := must(first.TensorAt(i))(t); one.Name != tensor.Name || one.Pointer() != tensor.Pointer() {
				t.Fatalf("R = %d: Tensors()[%d] is %s at %#x, TensorAt(%d) %s at %#x", replicas, i, tensor.Name,
					tensor.Pointer(), i, one.Name, one.Pointer())
			}
		}
		if w := must(Slice[float32](all[0]))(t); !reflect.DeepEqual(w, []float32{1, 1, 1, 1, 1, 1}) {
			t.Fatalf("R = %d: w = %v", replicas, w)
		}
		place, address := first.Place(), all[0].Pointer()
		first.Close() // R = 1: the next publish waits for no lease
		publish(t, topic, 2)
		second := must(topic.Acquire(ctx, 0))(t)
		if replicas == 1 {
			// Every version of an R = 1 topic at one place: the same addresses.
			w := must(second.Tensors())(t)[0]
			if place == 0 || second.Place() != place || w.Pointer() != address {
				t.Fatalf("R = 1: places %d, %d; w at %#x, then %#x", place, second.Place(), address, w.Pointer())
			}
		} else if place != 0 || second.Place() != 0 {
			t.Fatalf("R = 2: places %d, %d (each version in its own replica: 0)", place, second.Place())
		}
		row := ViewSpec{Name: "w0", Parent: "w", DType: DTypeF32, Shape: []int64{3}, Strides: []int64{1}}
		if err := topic.AddView(row); err != nil {
			t.Fatal(err)
		}
		if n := len(must(second.Tensors())(t)); n != 3 {
			t.Fatalf("R = %d: %d tensors after a view was added, want 3", replicas, n)
		}
		second.Close()
	}
}

func TestWaitReturnsTheNextVersionAndHonoursTheContext(t *testing.T) {
	_, client := attachedClient(t)
	topic := createModel(t, client, "model", 2)
	reader := must(client.OpenTopic("model"))(t)
	defer reader.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := reader.Wait(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait past the deadline: %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	started := time.Now()
	if _, err := reader.Wait(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel: %v", err)
	}
	if elapsed := time.Since(started); elapsed > 500*time.Millisecond {
		t.Fatalf("Wait noticed the cancellation after %v", elapsed)
	}

	time.AfterFunc(30*time.Millisecond, func() {
		if _, err := publishValue(topic, 1); err != nil {
			t.Error(err)
		}
	})
	if v := must(reader.Wait(context.Background(), 0))(t); v != 1 {
		t.Fatalf("Wait returned %d", v)
	}
}

// readable reports whether fd becomes readable within timeout.
func readable(t *testing.T, fd int, timeout time.Duration) bool {
	t.Helper()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(ep)
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}); err != nil {
		t.Fatal(err)
	}
	events := make([]syscall.EpollEvent, 1)
	for {
		n, err := syscall.EpollWait(ep, events, int(timeout.Milliseconds()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
}

func TestNotifyFDBecomesReadableOnPublish(t *testing.T) {
	_, client := attachedClient(t)
	topic := createModel(t, client, "model", 2)
	reader := must(client.OpenTopic("model"))(t)
	defer reader.Close()
	if _, err := reader.NotifyAck(); !errors.Is(err, ErrState) {
		t.Fatalf("NotifyAck before NotifyFD: %v", err)
	}
	fd := must(reader.NotifyFD())(t)
	if readable(t, fd, 50*time.Millisecond) {
		t.Fatal("readable before a publish")
	}
	publish(t, topic, 1)
	if !readable(t, fd, 5*time.Second) {
		t.Fatal("no notification within 5 s")
	}
	if v := must(reader.NotifyAck())(t); v != 1 {
		t.Fatalf("NotifyAck returned %d", v)
	}
	if readable(t, fd, 0) {
		t.Fatal("still readable after NotifyAck")
	}
}

func TestViewsShowTheirParentsBytes(t *testing.T) {
	_, client := attachedClient(t)
	topic := must(client.CreateTopic("fused", 2))(t)
	defer topic.Close()
	if err := topic.Alloc(TensorSpec{Name: "qkv", DType: DTypeU32, Shape: []int64{6, 4}}); err != nil {
		t.Fatal(err)
	}
	rows := ViewSpec{Name: "k", Parent: "qkv", DType: DTypeU32, ByteOffset: 2 * 4 * 4, Shape: []int64{2, 4}, Strides: []int64{4, 1}}
	if err := topic.AddView(rows); err != nil {
		t.Fatal(err)
	}
	update := must(topic.Begin(context.Background()))(t)
	qkv := must(Slice[uint32](must(update.Tensor("qkv"))(t)))(t)
	for i := range qkv {
		qkv[i] = uint32(i)
	}
	if _, err := update.Tensor("k"); !errors.Is(err, ErrState) {
		t.Fatalf("writing a view: %v", err)
	}
	must(update.Publish(nil))(t)

	snapshot := must(topic.Acquire(context.Background(), 0))(t)
	defer snapshot.Close()
	k := must(snapshot.Tensor("k"))(t)
	if got := must(Slice[uint32](k))(t); !k.IsView || !reflect.DeepEqual(got, []uint32{8, 9, 10, 11, 12, 13, 14, 15}) {
		t.Fatalf("view k: %+v %v", k.TensorInfo, got)
	}
	rows.Name, rows.ByteOffset = "outside", 4*24
	if err := topic.AddView(rows); !errors.Is(err, ErrSize) {
		t.Fatalf("a view outside its parent: %v", err)
	}
}

func TestSliceChecksTheDType(t *testing.T) {
	_, client := attachedClient(t)
	topic := createModel(t, client, "model", 2)
	publish(t, topic, 1)
	snapshot := must(topic.Acquire(context.Background(), 0))(t)
	defer snapshot.Close()
	_, err := Slice[int32](must(snapshot.Tensor("w"))(t))
	var wbErr *Error
	if !errors.As(err, &wbErr) || wbErr.Code != ErrDType || !strings.Contains(wbErr.Message, "f32") {
		t.Fatalf("Slice[int32] of an f32 tensor: %v", err)
	}
}

func TestErrorsCarryTheirCodeAndTheLibraryMessage(t *testing.T) {
	_, client := attachedClient(t)
	_, err := client.OpenTopic("absent")
	var wbErr *Error
	if !errors.As(err, &wbErr) || wbErr.Code != ErrNotFound || !strings.Contains(wbErr.Message, "absent") {
		t.Fatalf("OpenTopic of a missing topic: %#v", err)
	}
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrInval) || !strings.HasPrefix(err.Error(), "WB_E_NOT_FOUND") {
		t.Fatalf("error %q does not match its code", err)
	}

	checks := []struct {
		what string
		err  error
		want Code
	}{
		{"name too long", second(client.CreateTopic(strings.Repeat("x", NameMax+1), 2)), ErrNameTooLong},
		{"NUL in a name", second(client.CreateTopic("a\x00b", 2)), ErrInval},
		{"too many replicas", second(client.CreateTopic("model", MaxReplicas+1)), ErrInval},
	}
	topic := createModel(t, client, "model", 2)
	reader := must(client.OpenTopic("model"))(t)
	defer reader.Close()
	checks = append(checks, []struct {
		what string
		err  error
		want Code
	}{
		{"second publisher", second(client.CreateTopic("model", 2)), ErrBusy},
		{"acquire before a publish", second(reader.Acquire(context.Background(), 0)), ErrNotFound},
		{"begin as a reader", second(reader.Begin(context.Background())), ErrRole},
		{"too many dims", topic.Alloc(TensorSpec{Name: "deep", DType: DTypeU8, Shape: make([]int64, MaxDims+1)}), ErrShape},
		{"same name, other dtype", topic.Alloc(TensorSpec{Name: "w", DType: DTypeF64, Shape: []int64{2, 3}}), ErrExists},
	}...)
	for _, c := range checks {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
		}
	}

	update := must(topic.Begin(context.Background()))(t)
	defer update.Abort()
	if _, err := update.Publish(make([]byte, MetadataMax+1)); !errors.Is(err, ErrSize) {
		t.Fatalf("oversized metadata: %v", err)
	}
	if v := must(update.Publish(nil))(t); v != 1 {
		t.Fatalf("the update stays open after a failed publish, then publishes version 1; got %d", v)
	}
}

// second is the error of a (value, error) pair.
func second[T any](_ T, err error) error {
	return err
}

func TestAbortPublishesNothing(t *testing.T) {
	_, client := attachedClient(t)
	topic := createModel(t, client, "model", 2)
	publish(t, topic, 1)
	update := must(topic.Begin(context.Background()))(t)
	copy(must(Slice[float32](must(update.Tensor("w"))(t)))(t), []float32{9, 9, 9, 9, 9, 9})
	if err := update.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := update.Abort(); err != nil {
		t.Fatalf("a second Abort: %v", err)
	}
	if latest := must(topic.Latest())(t); latest != 1 {
		t.Fatalf("latest after abort: %d", latest)
	}
	if v := publish(t, topic, 2); v != 2 {
		t.Fatalf("next version %d", v)
	}
}

func TestClosingASnapshotReleasesItsLease(t *testing.T) {
	_, client := attachedClient(t)
	topic := createModel(t, client, "in-place", 1)
	publish(t, topic, 1)
	snapshot := must(topic.Acquire(context.Background(), 0))(t)
	leases := 0
	for _, c := range must(client.Clients())(t) {
		leases += c.Leases
	}
	if leases != 1 {
		t.Fatalf("%d leases held", leases)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := topic.Begin(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("R = 1 begin with a lease held: %v", err)
	}
	if err := snapshot.Close(); err != nil {
		t.Fatal(err)
	}
	if v := publish(t, topic, 2); v != 2 {
		t.Fatalf("next version %d", v)
	}
}

func TestHandlesCloseChildrenFirst(t *testing.T) {
	broker := startBroker(t)
	client := broker.attach(t)
	topic := must(client.CreateTopic("model", 2))(t)
	update := must(topic.Begin(context.Background()))(t)
	if err := topic.Close(); !errors.Is(err, ErrState) {
		t.Fatalf("topic.Close with an update open: %v", err)
	}
	if err := client.Close(); !errors.Is(err, ErrState) {
		t.Fatalf("client.Close with a topic open: %v", err)
	}
	for _, err := range []error{update.Abort(), topic.Close(), client.Close()} {
		if err != nil {
			t.Fatalf("closing children first: %v", err)
		}
	}
	if _, err := topic.Latest(); !errors.Is(err, ErrInval) {
		t.Fatalf("a closed topic: %v", err)
	}
}

func TestListingShowsTopicsAndClients(t *testing.T) {
	broker := startBroker(t)
	client := must(Attach(&AttachOptions{SocketPath: broker.socket, ClientName: "lister"}))(t)
	defer client.Close()
	topic := createModel(t, client, "listed", 3)
	publish(t, topic, 1)
	info := must(topic.Info())(t)
	if info.Name != "listed" || info.Replicas != 3 || info.Latest != 1 || info.TensorCount != 2 || info.Dirty || info.Bytes == 0 {
		t.Fatalf("info %+v", info)
	}
	if topics := must(client.Topics())(t); !reflect.DeepEqual(topics, []TopicInfo{info}) {
		t.Fatalf("topics %+v", topics)
	}
	id := must(client.ID())(t)
	for _, c := range must(client.Clients())(t) {
		if c.ID == id && c.Name == "lister" && c.TopicsPublished == 1 {
			return
		}
	}
	t.Fatalf("client %d is not listed as the publisher 'lister'", id)
}

func TestAttachWithoutABrokerIsAConnectError(t *testing.T) {
	if _, err := Attach(&AttachOptions{SocketPath: "/nonexistent/wb.sock"}); !errors.Is(err, ErrConnect) {
		t.Fatalf("attach: %v", err)
	}
}

func TestADeadBrokerEndsWaitsWithBrokerGone(t *testing.T) {
	broker := startBroker(t)
	// The timeout is also how long a wait waits for a successor broker.
	client, err := Attach(&AttachOptions{SocketPath: broker.socket, ClientName: "go-test", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	topic := createModel(t, client, "model", 2)
	broker.kill9()
	started := time.Now()
	if _, err := topic.Wait(context.Background(), 0); !errors.Is(err, ErrBrokerGone) {
		t.Fatalf("Wait after the broker died: %v", err)
	}
	if elapsed := time.Since(started); elapsed > 2*time.Second {
		t.Fatalf("noticed after %v", elapsed)
	}
}

func TestVersionAndDTypesMatchTheLibrary(t *testing.T) {
	if LibraryVersion() != Version || LibraryVersionString() != VersionString {
		t.Fatalf("library %d %q, package %d %q", LibraryVersion(), LibraryVersionString(), Version, VersionString)
	}
	if DTypeBF16.String() != "bf16" || DTypeBF16.Size() != 2 || DType(0).Size() != 0 || DType(0).String() != "dtype 0" {
		t.Fatal("dtype names or sizes differ from the library's")
	}
	path := must(DefaultSocketPath("job7"))(t)
	if !strings.HasSuffix(path, "job7.sock") && os.Getenv("WEIGHTBUS_SOCKET") == "" {
		t.Fatalf("default socket path %q", path)
	}
}

func TestRemoveTopicRemovesAnUnusedTopicAndRefusesAUsedOne(t *testing.T) {
	_, client := attachedClient(t)
	for _, c := range []struct {
		name string
		want Code
	}{{"absent", ErrNotFound}, {"", ErrNameTooLong}, {"model\x00", ErrInval}} {
		if err := client.RemoveTopic(c.name); !errors.Is(err, c.want) {
			t.Errorf("RemoveTopic(%q): %v, want %v", c.name, err, c.want)
		}
	}
	topic := createModel(t, client, "model", 2)
	publish(t, topic, 1)
	if err := client.RemoveTopic("model"); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "publisher") {
		t.Fatalf("RemoveTopic with a publisher: %v", err)
	}
	must(0, topic.Close())(t)
	reader := must(client.OpenTopic("model"))(t)
	defer reader.Close()
	snapshot := must(reader.Acquire(context.Background(), 0))(t)
	if err := client.RemoveTopic("model"); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "lease") {
		t.Fatalf("RemoveTopic with a lease: %v", err)
	}
	must(0, snapshot.Close())(t)
	must(0, client.RemoveTopic("model"))(t)
	if _, err := reader.Latest(); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "was removed") {
		t.Fatalf("Latest of a removed topic: %v", err)
	}
	if topics := must(client.Topics())(t); len(topics) != 0 {
		t.Fatalf("topics after removal: %v", topics)
	}
	createModel(t, client, "model", 1) // the name is free again
}
