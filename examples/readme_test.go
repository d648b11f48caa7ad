package examples_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	"github.com/parallelrun/grpc-parallelrun/internal/readme"
	// The README's configuration is checked against the pricing demo's
	// types.
	_ "github.com/parallelrun/grpc-parallelrun/proto/examples/pricing/v1"
)

// TestReadmeSnippetsAreExamples checks that every Go snippet of the README
// stands, line for line, in one of the testable examples, which compile
// and run with the tests: a snippet cannot drift from working code.
func TestReadmeSnippetsAreExamples(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("..", "*", "example_test.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	var examples []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		examples = append(examples, normalize(string(b)))
	}
	snippets := goBlocks(string(readme))
	if len(snippets) == 0 {
		t.Fatal("the README has no Go snippets")
	}
	for _, s := range snippets {
		found := false
		for _, e := range examples {
			if strings.Contains(e, normalize(s)) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("this README snippet is in no example_test.go:\n%s", s)
		}
	}
}

// TestReadmeConfigurationIsValid checks that every JSON block of the
// README is a configuration that ParseConfig accepts, checked against the
// types of the service it names.
func TestReadmeConfigurationIsValid(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := fenced(string(readme), "json")
	if len(blocks) == 0 {
		t.Fatal("the README has no JSON configuration")
	}
	for _, b := range blocks {
		cfg, err := interceptor.ParseConfig("README.md", []byte(b))
		if err != nil {
			t.Errorf("%v in:\n%s", err, b)
			continue
		}
		if len(cfg.GetMethods()) == 0 {
			t.Errorf("a configuration without methods:\n%s", b)
		}
	}
}

// goBlocks returns the contents of the ```go fences of a Markdown text.
func goBlocks(md string) []string { return fenced(md, "go") }

// fenced returns the contents of the fences of a language in a Markdown
// text.
func fenced(md, lang string) []string {
	var blocks []string
	open := "```" + lang + "\n"
	for {
		start := strings.Index(md, open)
		if start < 0 {
			return blocks
		}
		md = md[start+len(open):]
		end := strings.Index(md, "```")
		if end < 0 {
			return blocks
		}
		blocks = append(blocks, md[:end])
		md = md[end+3:]
	}
}

// normalize drops indentation and blank lines, so that a snippet matches
// the body of the function it comes from.
func normalize(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return "\n" + strings.Join(lines, "\n") + "\n"
}

// shellCommand says how a command of the README is run, as it is written.
type shellCommand struct {
	// here: this test runs it, with the README's other "here" commands in
	// their order in one shell (so that a job started with & can be
	// signalled by %1), in a folder that holds the repository's files (so
	// that what it writes lands there), and checks that what the shell
	// printed from the command on holds every string of want.
	here bool
	want []string
	// fails: its exit status must be non-zero (a gate that says no).
	fails bool
	// pause: the shell waits this long after it, as a reader would before
	// the next command (a program started in the background gets ready).
	pause time.Duration
	// ci: .ci/run holds the line as written.
	ci bool
}

// shellCommands is every command of the README. A command added there
// must be added here too, which the test enforces.
var shellCommands = map[string]shellCommand{
	"go run ./examples/quickstart -out reports.jsonl   # a legacy and a candidate pricing service, 3,500 mirrored calls, a summary": {
		here: true, want: []string{"tier:changed", "every report is in reports.jsonl"},
	},
	`jq -r 'select(.outcome == "OUTCOME_MISMATCH") | .differences[].field' reports.jsonl | sort | uniq -c | sort -rn`: {
		here: true, want: []string{" tier\n", " sku\n", " grpc-message\n"},
	},
	"go test ./...                                     # all tests": {ci: true},
	// Runtime control: the reload example, signalled as the README says.
	"go build -o .bin/reload ./examples/reload": {here: true},
	".bin/reload -config examples/reload/pricing.json -every 1s &   # says every second what was compared": {
		here: true, pause: 3 * time.Second, want: []string{"started with examples/reload/pricing.json", "compared in the last 1s: Quote"},
	},
	"kill -HUP %1   # after an edit of the file: it is read again": {
		here: true, pause: 2 * time.Second, want: []string{"configuration reloaded: "},
	},
	// The parallelrun command, on the quick start's reports: the demo's
	// candidate is not ready, and the fixed one fixes every mismatch.
	"go run ./cmd/parallelrun summary reports.jsonl   # exit status 1: not ready, and why": {
		here: true, fails: true,
		want: []string{"/examples.pricing.v1.PricingService/Quote: NOT READY", "tier changed: \"GOLD\" -> \"gold\"", "overall: NOT READY", "3,500 reports read, 0 malformed lines"},
	},
	`go run ./cmd/parallelrun summary --json reports.jsonl | jq -r '.methods[] | .method + " " + .readiness.verdict'`: {
		here: true, fails: true, // pipefail: summary's status
		want: []string{"/examples.pricing.v1.PricingService/Basket VERDICT_NOT_READY\n", "/examples.pricing.v1.PricingService/Quote VERDICT_NOT_READY\n"},
	},
	"go run ./examples/candidate -fixed -for 2m > candidate.log 2>&1 &   # in the background": {here: true},
	"go run ./cmd/parallelrun replay reports.jsonl --candidate 127.0.0.1:50051 --wait 2m --list-key lines=sku --ignore quote_id --ignore computed_at": {
		here: true, want: []string{"examples.pricing.v1.PricingService/Basket", "was \"GOLD\" -> \"gold\"", " fully fixed, 0 still different, 0 with new differences;", " 0 errors, 0 malformed lines"},
	},
	"go tool -modfile=tools/go.mod buf generate": {ci: true},
	"(cd tools/jaeger && go build -o ../../.bin/jaeger github.com/jaegertracing/jaeger/cmd/jaeger)  # v1.76.0; about 9 minutes the first time": {ci: true},
	// The Jaeger commands, run by examples/jaeger/readme_test.go.
	".bin/jaeger &": {},
	"go run -C examples/jaeger .   # -otlp host:port for another collector":                                     {},
	`curl -g 'localhost:16686/api/traces?service=pricing-client&limit=20&tags={"parallelrun.mismatch":"true"}'`: {},
	// The fleet: .ci/run builds Prometheus and the Collector as written;
	// examples/fleet's end-to-end test runs the command against them, on
	// ports of its own.
	`go run ./cmd/parallelrun summary --prometheus http://localhost:9090 --selector 'job="pricing-client"'`:      {},
	"(cd tools/prometheus && go build -o ../../.bin/prometheus github.com/prometheus/prometheus/cmd/prometheus)": {ci: true},
	"(cd tools/otelcol && go build -o ../../.bin/otelcol .)":                                                     {ci: true},
	// What CI runs.
	"bash .ci/run": {},
	// Run here with a fuzz time of a few seconds: the one change.
	"go test ./protodiff -run '^$' -fuzz FuzzDiff -fuzztime 10m": {here: true, want: []string{"PASS"}},
}

// TestReadmeShellCommands runs the README's shell commands as they are
// written, or checks that CI or the Jaeger end-to-end module does: a
// command that stopped working fails here, not in a reader's terminal.
func TestReadmeShellCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the quick start and a short fuzzing session")
	}
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, c := range readme.StrayCommands(md) {
		t.Errorf("README.md:%d: the command %q stands outside a sh block, where no test runs it", c.Number, c.Line)
	}
	ci, err := os.ReadFile(filepath.Join("..", ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var here []readme.Command
	for _, c := range readme.Commands(md) {
		seen[c.Line] = true
		how, ok := shellCommands[c.Line]
		switch {
		case !ok:
			t.Errorf("README.md:%d: no test runs %q: add it to shellCommands", c.Number, c.Line)
		case how.ci:
			if !strings.Contains(string(ci), "\n"+uncommented(c.Line)+"\n") {
				t.Errorf("README.md:%d: .ci/run does not run %q as written", c.Number, c.Line)
			}
		case how.here:
			here = append(here, c)
		}
	}
	for line := range shellCommands {
		if !seen[line] {
			t.Errorf("shellCommands has %q, which the README no longer has", line)
		}
	}

	out, status := runScript(t, mirror(t, root), here)
	for i, c := range here {
		how := shellCommands[c.Line]
		if status[i] < 0 {
			t.Errorf("README.md:%d: %s did not end:\n%s", c.Number, c.Line, out[i])
			continue
		}
		if (status[i] != 0) != how.fails {
			t.Errorf("README.md:%d: %s: exit status %d\n%s", c.Number, c.Line, status[i], out[i])
			continue
		}
		for _, w := range how.want {
			if !strings.Contains(out[i], w) {
				t.Errorf("README.md:%d: %s: the output lacks %q:\n%s", c.Number, c.Line, w, out[i])
			}
		}
	}
}

// runScript runs the commands in order in one bash, in dir, and returns
// for each what the shell printed from its start to the end of the
// script (a job in the background goes on printing), and its exit status
// (-1 when it did not end). The shell runs in a process group of its own,
// killed at the end with all it started.
func runScript(t *testing.T, dir string, cmds []readme.Command) (out []string, status []int) {
	t.Helper()
	var script strings.Builder
	script.WriteString("set -o pipefail\n")
	for i, c := range cmds {
		line := strings.Replace(c.Line, "-fuzztime 10m", "-fuzztime 3s", 1)
		fmt.Fprintf(&script, "echo '@@@ %d start'\n%s\necho \"@@@ %d end $?\"\n", i, line, i)
		if p := shellCommands[c.Line].pause; p > 0 {
			fmt.Fprintf(&script, "sleep %g\n", p.Seconds())
		}
	}
	// A file, not a pipe: jobs left in the background hold their output
	// open, and the test must not wait for them.
	f, err := os.Create(filepath.Join(t.TempDir(), "transcript"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for i := range cmds {
		status = append(status, -1)
		out = append(out, "")
		start := strings.Index(text, fmt.Sprintf("@@@ %d start\n", i))
		if start < 0 {
			continue
		}
		out[i] = text[start:]
		end := fmt.Sprintf("@@@ %d end ", i)
		if j := strings.Index(out[i], end); j >= 0 {
			_, _ = fmt.Sscanf(out[i][j+len(end):], "%d", &status[i])
		}
	}
	return out, status
}

// uncommented is a command without its trailing comment.
func uncommented(line string) string {
	if i := strings.Index(line, "  #"); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

// mirror makes a folder whose entries link to the repository's, so that
// commands run from the repository's root write their files elsewhere.
func mirror(t *testing.T, root string) string {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, e := range entries {
		if e.Name() == ".git" {
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
