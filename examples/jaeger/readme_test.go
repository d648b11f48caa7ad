package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parallelrun/grpc-parallelrun/internal/readme"
	"github.com/parallelrun/grpc-parallelrun/internal/testproc"
)

// TestReadmeJaegerCommands runs the README's Jaeger commands as they are
// written, from the repository's root: it starts the Jaeger that .ci/run
// built where the README builds it, runs the demo against it, and reads
// the mismatches back with the README's curl command.
func TestReadmeJaegerCommands(t *testing.T) {
	if os.Getenv("JAEGER_BIN") == "" {
		t.Skip("JAEGER_BIN is not set: .ci/run builds Jaeger and sets it")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var start, demo, query string
	for _, c := range readme.Commands(string(b)) {
		switch {
		case strings.HasPrefix(c.Line, ".bin/jaeger"):
			start = c.Line
		case strings.HasPrefix(c.Line, "go run -C examples/jaeger"):
			demo = c.Line
		case strings.HasPrefix(c.Line, "curl ") && strings.Contains(c.Line, "localhost:16686"):
			query = c.Line
		}
	}
	if start != ".bin/jaeger &" || demo == "" || query == "" {
		t.Fatalf("the README's Jaeger commands are not where this test looks: %q, %q, %q", start, demo, query)
	}

	// ".bin/jaeger &": the same process, started and stopped by the test.
	testproc.Start(t, testproc.Process{Name: "jaeger", Bin: filepath.Join(root, ".bin", "jaeger"), Dir: root,
		Ready: testproc.HTTPOK("http://localhost:13133/status"), ReadyTimeout: 3 * time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	if out, err := shell(ctx, root, demo); err != nil || !strings.Contains(out, "done") {
		t.Fatalf("%s: %v\n%s", demo, err, out)
	}
	// Spans reach storage asynchronously.
	var traces int
	testproc.WaitFor(t, ctx, "the README's query to find mismatches", func() bool {
		out, err := shell(ctx, root, query)
		if err != nil {
			t.Fatalf("%s: %v\n%s", query, err, out)
		}
		var body struct {
			Data []struct {
				Spans []span `json:"spans"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(out), &body); err != nil {
			t.Fatalf("%s: %v\n%s", query, err, out)
		}
		traces = 0
		for _, tr := range body.Data {
			for _, s := range tr.Spans {
				if strings.HasPrefix(s.OperationName, "parallelrun ") && s.tag("parallelrun.mismatch") == "true" {
					traces++
					break
				}
			}
		}
		return traces == 20 && len(body.Data) == 20
	})
	t.Logf("the README's query found %d traces with a mismatch", traces)
}

// shell runs one command line with bash in dir and returns what it wrote
// to its standard output; its standard error goes with a failure.
func shell(ctx context.Context, dir, line string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", line)
	cmd.Dir = dir
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, errs.String())
	}
	return out.String(), nil
}
