package testproc_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/parallelrun/grpc-parallelrun/internal/testproc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A process runs while its test does, and neither it nor the goroutine
// that waits for it outlives the test.
func TestStartStopsTheProcessWithTheTest(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	addr := testproc.FreePorts(t, 1)[0]
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var proc *os.Process
	t.Run("running", func(t *testing.T) {
		proc = testproc.Start(t, testproc.Process{Name: "sleep", Bin: sleep, Args: []string{"600"}, Ready: testproc.Listening(addr)})
		if err := proc.Signal(syscall.Signal(0)); err != nil {
			t.Fatalf("sleep is not running: %v", err)
		}
	})
	if proc == nil {
		t.Fatal("the subtest did not run")
	}
	if err := proc.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("after its test: %v, want the process done", err)
	}
}
