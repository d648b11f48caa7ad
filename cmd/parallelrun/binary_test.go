package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestBinary builds the command and runs it as a user would: exit
// statuses, standard input, and the streams each output goes to.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build with")
	}
	bin := filepath.Join(t.TempDir(), "parallelrun")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	exitCode := func(err error) int {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}

	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, getQuote("A"))
	fixed := serve(t, &quotes{units: 10}, true)
	f, err := os.Open(reports)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, "replay", "--candidate", fixed) // reports on standard input
	cmd.Stdin = f
	out, err := cmd.Output()
	if code := exitCode(err); code != exitOK || !strings.Contains(string(out), "1 fully fixed") || !strings.Contains(string(out), "(stdin:1)") {
		t.Errorf("replay of a fixed candidate: exit %d\n%s", code, out)
	}

	out, err = exec.Command(bin, "replay", reports, "--candidate", serve(t, &quotes{units: 12}, true)).Output()
	if code := exitCode(err); code != exitFail || !strings.Contains(string(out), "1 still different") {
		t.Errorf("replay of a candidate still wrong: exit %d\n%s", code, out)
	}

	// A reply holding one of protobuf's well-known types that nothing
	// else in the command uses: the binary links them all.
	gold, err := anypb.New(wrapperspb.String("gold"))
	if err != nil {
		t.Fatal(err)
	}
	reports = recordRun(t, &quotes{units: 10, detail: gold}, &quotes{units: 11, detail: gold}, getQuote("A"))
	if b, err := os.ReadFile(reports); err != nil || !strings.Contains(string(b), "type.googleapis.com/google.protobuf.StringValue") {
		t.Fatalf("the report holds no StringValue (%v):\n%s", err, b)
	}
	out, err = exec.Command(bin, "replay", reports, "--candidate", serve(t, &quotes{units: 10, detail: gold}, true)).Output()
	if code := exitCode(err); code != exitOK || !strings.Contains(string(out), "1 fully fixed") {
		t.Errorf("replay of replies holding a google.protobuf.StringValue: exit %d\n%s", code, out)
	}

	cmd = exec.Command(bin, "replay", reports)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if code := exitCode(cmd.Run()); code != exitUsage || !strings.Contains(stderr.String(), "--candidate is required") {
		t.Errorf("a usage error: exit %d\n%s", code, stderr.String())
	}
	a, b, _ := twoInstances(t)
	out, err = exec.Command(bin, append([]string{"summary", a, b}, policy...)...).Output()
	if code := exitCode(err); code != exitOK || !strings.Contains(string(out), "overall: READY") {
		t.Errorf("summary of a ready run: exit %d\n%s", code, out)
	}
	out, err = exec.Command(bin, "summary", a, b).Output()
	if code := exitCode(err); code != exitFail || !strings.Contains(string(out), "overall: NOT READY") {
		t.Errorf("summary of a run not ready: exit %d\n%s", code, out)
	}

	if code := exitCode(exec.Command(bin, "nonsense").Run()); code != exitUsage {
		t.Errorf("an unknown command: exit %d", code)
	}
	if out, err := exec.Command(bin, "help").Output(); exitCode(err) != exitOK || !strings.Contains(string(out), "Usage:") {
		t.Errorf("help: %v\n%s", err, out)
	}
}
