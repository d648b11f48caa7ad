// Package testproc runs the real services an end-to-end test talks to
// (Jaeger, Prometheus, an OpenTelemetry Collector) as processes on
// loopback: [Start] starts one and waits until it is ready, and stops it
// when the test ends, showing its output when the test failed;
// [FreePorts] finds addresses for them and [WaitFor] polls for what they
// do asynchronously.
package testproc

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Process is a program to run.
type Process struct {
	Name string   // for the test's messages and the log file
	Bin  string   // the program
	Args []string // its arguments
	Dir  string   // its working directory; the test's when empty
	Env  []string // added to the test's environment
	// Ready says when it serves; Start waits for it (for at most
	// ReadyTimeout, default 2 minutes).
	Ready        func() bool
	ReadyTimeout time.Duration
}

// Start runs p until the test ends: then it is interrupted (killed after
// 15 s) and waited for, and its output, kept in a file, is shown if the
// test failed. Start returns the process once it is ready, and fails the
// test if it exits first.
func Start(t testing.TB, p Process) *os.Process {
	t.Helper()
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), p.Env...)
	logs, err := os.Create(filepath.Join(t.TempDir(), p.Name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			if b, err := os.ReadFile(logs.Name()); err == nil {
				t.Logf("%s log (last 8 KiB):\n%s", p.Name, b[max(0, len(b)-8<<10):])
			}
		}
	})
	timeout := p.ReadyTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	WaitFor(t, ctx, p.Name+" to be ready", func() bool {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logs.Name())
			t.Fatalf("%s exited: %v\n%s", p.Name, err, b)
		default:
		}
		return p.Ready()
	})
	return cmd.Process
}

// WaitFor polls cond until it holds, and fails the test when ctx ends
// first.
func WaitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waited for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// FreePorts returns n loopback addresses that were free a moment ago.
func FreePorts(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return addrs
}

// HTTPOK says whether a GET of url answers 200.
func HTTPOK(url string) func() bool {
	return func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

// Listening says whether addr accepts connections.
func Listening(addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}
