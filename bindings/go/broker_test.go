package weightbus

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testBroker is a private weightbusd ($WEIGHTBUSD) in a fresh directory with a unique name, stopped with
// SIGTERM when the test ends.
type testBroker struct {
	cmd    *exec.Cmd
	name   string
	socket string
}

var brokersStarted int32

func startBroker(t *testing.T) *testBroker {
	t.Helper()
	exe := os.Getenv("WEIGHTBUSD")
	if exe == "" {
		t.Fatal("set WEIGHTBUSD to the weightbusd binary (tests/bindings/run.sh does)")
	}
	b := &testBroker{name: fmt.Sprintf("go-%d-%d", os.Getpid(), atomic.AddInt32(&brokersStarted, 1))}
	b.socket = filepath.Join(t.TempDir(), "broker.sock")
	b.cmd = exec.Command(exe, "--foreground", "--socket", b.socket, "--name", b.name, "--log-level", "warn")
	b.cmd.Stderr = os.Stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start weightbusd: %v", err)
	}
	t.Cleanup(b.stop)
	b.waitUntilAccepting(t)
	return b
}

// waitUntilAccepting attaches until the broker answers: its socket exists a moment before it listens.
func (b *testBroker) waitUntilAccepting(t *testing.T) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		client, err := Attach(&AttachOptions{SocketPath: b.socket, ClientName: "probe"})
		if err == nil {
			client.Close()
			return
		}
		if !errors.Is(err, ErrConnect) || time.Now().After(deadline) {
			t.Fatalf("weightbusd at %s does not accept: %v", b.socket, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *testBroker) attach(t *testing.T) *Client {
	t.Helper()
	client, err := Attach(&AttachOptions{SocketPath: b.socket, ClientName: "go-test"})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	return client
}

// kill9 kills the broker without letting it clean up, as in a crash.
func (b *testBroker) kill9() {
	b.cmd.Process.Kill()
	b.cmd.Wait()
}

func (b *testBroker) stop() {
	if b.cmd.ProcessState == nil {
		b.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { b.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			b.cmd.Process.Kill()
			<-done
		}
	}
	// A broker killed with SIGKILL leaves its segment and host allocations (<segment>.a<N>) behind.
	segment := fmt.Sprintf("/dev/shm/weightbus-%d-%s", os.Getuid(), b.name)
	os.Remove(segment)
	allocations, _ := filepath.Glob(segment + ".a*")
	for _, allocation := range allocations {
		os.Remove(allocation)
	}
}
