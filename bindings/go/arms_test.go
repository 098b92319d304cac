package weightbus

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// armedReader is a second client's reader of topic name, with a plan that copies all of "w" (f32[2, 3]) into
// its buffer 0. The plan and the topic close when the test ends, children first.
func armedReader(t *testing.T, broker *testBroker, name string) (*Topic, *Plan) {
	t.Helper()
	client := broker.attach(t)
	t.Cleanup(func() { client.Close() })
	topic := must(client.OpenTopic(name))(t)
	t.Cleanup(func() { topic.Close() })
	whole := SliceDest{DType: DTypeF32, Shape: []int64{2, 3}, Parts: []SlicePart{{Name: "w", Offset: []int64{0, 0}, Extent: []int64{2, 3}}}}
	plan := must(NewPlan(topic, whole))(t)
	t.Cleanup(func() { plan.Close() })
	return topic, plan
}

// armedSetup is a private broker's model "model" (f32 "w", R replicas) with version 1 published, and a second
// client's reader of it with armedReader's plan.
func armedSetup(t *testing.T, replicas int) (publisher, reader *Topic, plan *Plan) {
	t.Helper()
	broker, client := attachedClient(t)
	publisher = createModel(t, client, "model", replicas)
	publish(t, publisher, 1)
	reader, plan = armedReader(t, broker, "model")
	return publisher, reader, plan
}

// expectOutput checks that the plan's buffer holds value in every element of "w".
func expectOutput(t *testing.T, plan *Plan, value float32) {
	t.Helper()
	out := plan.Output(0)
	for i := 0; i < len(out); i += 4 {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(out[i:])); got != value {
			t.Fatalf("the plan's buffer holds %v at element %d, not %v", got, i/4, value)
		}
	}
}

// publishWithin publishes "w" = value, failing the test if the begin waits longer than within.
func publishWithin(t *testing.T, topic *Topic, value float32, within time.Duration) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	update, err := topic.Begin(ctx)
	if err != nil {
		t.Fatalf("begin within %v: %v", within, err)
	}
	defer update.Abort()
	values := must(Slice[float32](must(update.Tensor("w"))(t)))(t)
	for i := range values {
		values[i] = value
	}
	return must(update.Publish(nil))(t)
}

// expectBeginBlocked checks that an R = 1 begin waits: a lease holds the published version.
func expectBeginBlocked(t *testing.T, topic *Topic) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if update, err := topic.Begin(ctx); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			update.Abort()
		}
		t.Fatalf("R = 1 begin with the version leased: %v", err)
	}
}

// R = 1: the arm of version 2 keeps the publisher's begin from nothing; once 2 is published the wait copies it.
func TestArmLeasesTheNextVersionBeforeItIsPublished(t *testing.T) {
	publisher, reader, plan := armedSetup(t, 1)
	armed := must(plan.Arm(1))(t)
	defer armed.Release()
	if v := must(armed.Version())(t); v != 2 {
		t.Fatalf("armed version %d", v)
	}
	if onStream := must(armed.OnStream())(t); onStream {
		t.Fatalf("a host plan's arm is on a stream")
	}
	soon, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if snapshot, err := armed.Wait(soon); !errors.Is(err, context.DeadlineExceeded) || snapshot != nil {
		t.Fatalf("a wait of 50 ms before version 2 exists: %v, %v", snapshot, err)
	}
	if v := must(armed.Version())(t); v != 2 {
		t.Fatalf("armed version after a timeout: %d", v)
	}
	if err := reader.Close(); !errors.Is(err, ErrState) {
		t.Fatalf("Topic.Close with an arm held: %v", err)
	}
	if err := plan.Close(); !errors.Is(err, ErrState) {
		t.Fatalf("Plan.Close with an arm held: %v", err)
	}
	if v := publishWithin(t, publisher, 2, time.Second); v != 2 { // in place, under the arm: begin does not wait
		t.Fatalf("published version %d", v)
	}
	expectBeginBlocked(t, publisher) // version 2 is published: the arm's lease pins it
	snapshot := must(armed.Wait(context.Background()))(t)
	if snapshot.Version() != 2 {
		t.Fatalf("the wait's snapshot is of version %d", snapshot.Version())
	}
	if _, err := armed.OnStream(); !errors.Is(err, ErrInval) {
		t.Fatalf("OnStream of a spent arm: %v", err)
	}
	expectOutput(t, plan, 2)
	if got := must(Slice[float32](must(snapshot.Tensor("w"))(t)))(t); got[0] != 2 {
		t.Fatalf("the snapshot's w: %v", got)
	}
	expectBeginBlocked(t, publisher) // the snapshot took the lease over
	if err := reader.Close(); !errors.Is(err, ErrState) {
		t.Fatalf("Topic.Close with the wait's snapshot open: %v", err)
	}
	if err := snapshot.Close(); err != nil {
		t.Fatal(err)
	}
	if v := publishWithin(t, publisher, 3, time.Second); v != 3 {
		t.Fatalf("published version %d", v)
	}
	// The plan counts its arms: a host arm (the wait copied).
	if info := must(plan.Info())(t); info.Arms != 1 || info.GpuArms != 0 || info.GpuArmsClaimed != 0 {
		t.Fatalf("the plan's arms: %+v", info)
	}
	if err := plan.Close(); err != nil {
		t.Fatalf("Plan.Close once the arm is spent: %v", err)
	}
	if err := reader.Close(); err != nil {
		t.Fatalf("Topic.Close once the arm is spent: %v", err)
	}
}

// A version newer than after that can be read now is the one armed, and the wait copies it at once.
func TestArmOfAPublishedVersionCopiesItAtOnce(t *testing.T) {
	publisher, _, plan := armedSetup(t, 2)
	publish(t, publisher, 2)
	for after := uint64(0); after < 2; after++ {
		for i := range plan.Output(0) {
			plan.Output(0)[i] = 0
		}
		armed := must(plan.Arm(after))(t)
		if v := must(armed.Version())(t); v != 2 {
			t.Fatalf("Arm(%d) armed version %d", after, v)
		}
		snapshot := must(armed.Wait(context.Background()))(t)
		if snapshot.Version() != 2 {
			t.Fatalf("Arm(%d)'s snapshot is of version %d", after, snapshot.Version())
		}
		expectOutput(t, plan, 2)
		if err := snapshot.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestArmAfterTheLatestIsRefused(t *testing.T) {
	_, reader, plan := armedSetup(t, 1)
	armed, err := plan.Arm(2)
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrInval || !strings.Contains(e.Message, "after=2 is beyond its latest version, 1") || armed != nil {
		t.Fatalf("Arm(2) with the latest 1: %v, %v", armed, err)
	}
	if err := reader.Close(); err != nil { // nothing is counted for a refused arm
		t.Fatalf("Topic.Close after a refused arm: %v", err)
	}
}

// An arm released after its version is published lets the R = 1 publisher go on; nothing is copied.
func TestReleasingAnArmLetsThePublisherBeginAgain(t *testing.T) {
	publisher, _, plan := armedSetup(t, 1)
	armed := must(plan.Arm(1))(t)
	publishWithin(t, publisher, 2, time.Second)
	expectBeginBlocked(t, publisher)
	if err := armed.Release(); err != nil {
		t.Fatal(err)
	}
	if v := publishWithin(t, publisher, 3, time.Second); v != 3 {
		t.Fatalf("published version %d", v)
	}
	expectOutput(t, plan, 0) // a withdrawn arm copies nothing
}

// A spent arm (waited for, released, or failed) answers ErrInval to Wait and Version, and Release does nothing;
// a wait's error other than a timeout spends the arm too, and Close counts it gone.
func TestASpentArmIsSafeToWaitForAndRelease(t *testing.T) {
	publisher, reader, plan := armedSetup(t, 1)
	expectSpent := func(armed *Armed, how string) {
		t.Helper()
		if snapshot, err := armed.Wait(context.Background()); !errors.Is(err, ErrInval) || snapshot != nil {
			t.Fatalf("Wait after %s: %v, %v", how, snapshot, err)
		}
		if _, err := armed.Version(); !errors.Is(err, ErrInval) {
			t.Fatalf("Version after %s: %v", how, err)
		}
		if err := armed.Release(); err != nil {
			t.Fatalf("Release after %s: %v", how, err)
		}
	}

	waited := must(plan.Arm(0))(t)
	snapshot := must(waited.Wait(context.Background()))(t)
	expectSpent(waited, "a wait")
	if err := snapshot.Close(); err != nil {
		t.Fatal(err)
	}

	released := must(plan.Arm(1))(t)
	if err := released.Release(); err != nil {
		t.Fatal(err)
	}
	expectSpent(released, "a release")

	// R = 1: an update writes "w" in place and aborts, so the topic is dirty; version 2 writes "mask" only, so
	// "w" stays half-written and the arm's wait reports it.
	failed := must(plan.Arm(1))(t)
	update := must(publisher.Begin(context.Background()))(t)
	must(update.Tensor("w"))(t)
	if err := update.Abort(); err != nil {
		t.Fatal(err)
	}
	update = must(publisher.Begin(context.Background()))(t)
	must(update.Tensor("mask"))(t)
	if v := must(update.Publish(nil))(t); v != 2 {
		t.Fatalf("published version %d", v)
	}
	if snapshot, err := failed.Wait(context.Background()); !errors.Is(err, ErrDirty) || snapshot != nil {
		t.Fatalf("the wait for a dirty version: %v, %v", snapshot, err)
	}
	expectSpent(failed, "a failed wait")

	if err := plan.Close(); err != nil {
		t.Fatalf("Plan.Close with every arm spent: %v", err)
	}
	if err := reader.Close(); err != nil {
		t.Fatalf("Topic.Close with every arm spent: %v", err)
	}
}
