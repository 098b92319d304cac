// Command crosslanguage is one side of the cross-language check (tests/bindings/cross-language.sh); the Rust
// example bindings/rust/examples/cross_language.rs is the other, and both agree on this model:
//
//	tensor k   name    dtype  shape
//	0          w       f32    [32, 16]
//	1          ids     i64    [50]
//	2          mask    u8     [77]
//	view       w.row3  f32    [16]      row 3 of w (byte offset 192)
//
// Byte j of tensor k in version v is (7v + 13k + j) mod 251, and version v's metadata is "step=<v>".
//
// usage: crosslanguage publish|read TOPIC VERSIONS   (the broker from $WEIGHTBUS_SOCKET)
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"time"

	weightbus "github.com/weightbus/weightbus/bindings/go"
)

var tensors = []weightbus.TensorSpec{
	{Name: "w", DType: weightbus.DTypeF32, Shape: []int64{32, 16}},
	{Name: "ids", DType: weightbus.DTypeI64, Shape: []int64{50}},
	{Name: "mask", DType: weightbus.DTypeU8, Shape: []int64{77}},
}

var row3 = weightbus.ViewSpec{Name: "w.row3", Parent: "w", DType: weightbus.DTypeF32, ByteOffset: 3 * 16 * 4, Shape: []int64{16}, Strides: []int64{1}}

const timeout = 10 * time.Second

func pattern(version uint64, tensor int, length int) []byte {
	p := make([]byte, length)
	for j := range p {
		p[j] = byte((7*version + 13*uint64(tensor) + uint64(j)) % 251)
	}
	return p
}

func publish(client *weightbus.Client, topicName string, versions uint64) error {
	topic, err := client.CreateTopic(topicName, 2)
	if err != nil {
		return err
	}
	defer topic.Close()
	if err := topic.Alloc(tensors...); err != nil {
		return err
	}
	if err := topic.AddView(row3); err != nil {
		return err
	}
	for i := uint64(0); i < versions; i++ {
		if err := publishOne(topic); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond) // let the reader see several versions, not only the last
	}
	fmt.Printf("go publisher: published %d versions of '%s'\n", versions, topicName)
	return nil
}

func publishOne(topic *weightbus.Topic) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	update, err := topic.Begin(ctx)
	if err != nil {
		return err
	}
	defer update.Abort()
	for k, spec := range tensors {
		tensor, err := update.Tensor(spec.Name)
		if err != nil {
			return err
		}
		dest, err := tensor.Bytes()
		if err != nil {
			return err
		}
		copy(dest, pattern(update.Version(), k, len(dest)))
	}
	_, err = update.Publish([]byte(fmt.Sprintf("step=%d", update.Version())))
	return err
}

// openWhenCreated waits until the publisher has created the topic: the reader may start first.
func openWhenCreated(ctx context.Context, client *weightbus.Client, topicName string) (*weightbus.Topic, error) {
	for {
		topic, err := client.OpenTopic(topicName)
		if !errors.Is(err, weightbus.ErrNotFound) || ctx.Err() != nil {
			return topic, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verify checks every tensor, the view and the metadata of the snapshot against the pattern.
func verify(snapshot *weightbus.Snapshot) ([]string, error) {
	v := snapshot.Version()
	var problems []string
	if string(snapshot.Metadata()) != fmt.Sprintf("step=%d", v) {
		problems = append(problems, fmt.Sprintf("version %d: metadata %q", v, snapshot.Metadata()))
	}
	for k, spec := range tensors {
		tensor, err := snapshot.Tensor(spec.Name)
		if err != nil {
			return nil, err
		}
		data, err := tensor.Bytes()
		if err != nil {
			return nil, err
		}
		if tensor.DType != spec.DType || !reflect.DeepEqual(tensor.Shape, spec.Shape) {
			problems = append(problems, fmt.Sprintf("version %d: %s is %s %v", v, spec.Name, tensor.DType, tensor.Shape))
		} else if !bytes.Equal(data, pattern(v, k, len(data))) {
			problems = append(problems, fmt.Sprintf("version %d: the bytes of %s differ", v, spec.Name))
		}
	}
	view, err := snapshot.Tensor(row3.Name)
	if err != nil {
		return nil, err
	}
	if data, err := view.Bytes(); err != nil {
		return nil, err
	} else if !bytes.Equal(data, pattern(v, 0, 256)[192:]) {
		problems = append(problems, fmt.Sprintf("version %d: the view %s differs from its parent's row", v, row3.Name))
	}
	return problems, nil
}

func read(client *weightbus.Client, topicName string, versions uint64) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	topic, err := openWhenCreated(ctx, client, topicName)
	if err != nil {
		return nil, err
	}
	defer topic.Close()
	seen, verified := uint64(0), 0
	for seen < versions {
		if _, err := topic.Wait(ctx, seen); err != nil {
			return nil, err
		}
		// The latest: an older version may have expired meanwhile.
		snapshot, err := topic.Acquire(ctx, 0)
		if err != nil {
			return nil, err
		}
		problems, err := verify(snapshot)
		seen = snapshot.Version()
		snapshot.Close()
		if err != nil || len(problems) > 0 {
			return problems, err
		}
		verified++
	}
	fmt.Printf("go reader: verified %d versions of '%s', the last %d\n", verified, topicName, seen)
	return nil, nil
}

func main() {
	os.Exit(run())
}

// run returns the exit status: 0, 1 for a failure or mismatch, 2 for a usage error.
func run() int {
	versions, err := strconv.ParseUint(argument(3), 10, 64)
	role, topic := argument(1), argument(2)
	if len(os.Args) != 4 || (role != "publish" && role != "read") || err != nil {
		fmt.Fprintln(os.Stderr, "usage: crosslanguage publish|read TOPIC VERSIONS")
		return 2
	}
	client, err := weightbus.Attach(&weightbus.AttachOptions{ClientName: "go-" + role})
	if err != nil {
		fmt.Fprintf(os.Stderr, "go %s: %v\n", role, err)
		return 1
	}
	defer client.Close()
	var problems []string
	if role == "publish" {
		err = publish(client, topic, versions)
	} else {
		problems, err = read(client, topic, versions)
	}
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "go %s: MISMATCH: %s\n", role, p)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "go %s: %v\n", role, err)
	}
	if err != nil || len(problems) > 0 {
		return 1
	}
	return 0
}

// argument is os.Args[i], or "" when there are fewer.
func argument(i int) string {
	if i < len(os.Args) {
		return os.Args[i]
	}
	return ""
}
