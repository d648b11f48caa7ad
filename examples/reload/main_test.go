package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestReloadOnSIGHUP builds the program, runs it on a copy of its sample
// configuration, turns the quotes off in the file and sends SIGHUP: the
// quotes are no longer compared, the listings still are. Then a file with
// a mistake is refused, with the line and key of the mistake, and the
// configuration in force stays.
func TestReloadOnSIGHUP(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command, to build the program: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "reload")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sample, err := os.ReadFile("pricing.json")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "pricing.json")
	write := func(data string) {
		t.Helper()
		// Written aside and renamed, as an editor does, so that the
		// program never reads half a file.
		if err := os.WriteFile(config+".new", []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(config+".new", config); err != nil {
			t.Fatal(err)
		}
	}
	write(string(sample))

	cmd := exec.Command(bin, "-config", config, "-every", "200ms")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		scan := bufio.NewScanner(stdout)
		for scan.Scan() {
			lines <- scan.Text()
		}
	}()
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	var log []string
	// await reads the program's output until a line matches, and returns
	// the lines read up to it.
	await := func(what string, match func(string) bool) []string {
		t.Helper()
		var read []string
		timeout := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the program ended before %s:\n%s\n%s", what, strings.Join(log, "\n"), stderr.String())
				}
				log = append(log, l)
				read = append(read, l)
				if match(l) {
					return read
				}
			case <-timeout:
				t.Fatalf("no %s in 20s:\n%s", what, strings.Join(log, "\n"))
			}
		}
	}
	compared := regexp.MustCompile(`compared in the last 200ms: Quote (\d+), ListPrices (\d+)$`)
	counts := func(l string) (quotes, listings int, ok bool) {
		m := compared.FindStringSubmatch(l)
		if m == nil {
			return 0, 0, false
		}
		quotes, _ = strconv.Atoi(m[1])
		listings, _ = strconv.Atoi(m[2])
		return quotes, listings, true
	}
	quotesAndListings := func(l string) bool {
		q, n, ok := counts(l)
		return ok && q > 0 && n > 0
	}
	listingsOnly := func(l string) bool {
		q, n, ok := counts(l)
		return ok && q == 0 && n > 0
	}

	await("start", func(l string) bool { return strings.Contains(l, "started with "+config) })
	await("quotes and listings compared", quotesAndListings)

	// Quotes off.
	off := strings.Replace(string(sample), `"pattern": "/examples.pricing.v1.PricingService/Quote",`,
		`"pattern": "/examples.pricing.v1.PricingService/Quote",
      "disabled": true,`, 1)
	if off == string(sample) {
		t.Fatal("the sample configuration has no Quote rule to turn off")
	}
	write(off)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	await("the reload", func(l string) bool {
		return strings.Contains(l, "configuration reloaded: /examples.pricing.v1.PricingService/* 100%, /examples.pricing.v1.PricingService/Quote off")
	})
	await("listings compared without quotes", listingsOnly)

	// A mistake on line 16: refused, and the quotes stay off.
	mistake := strings.Replace(string(sample), `"listKeys": {"lines": "sku"}`, `"listKeys": {"lines": "sku"},
        "ignoredPaths": ["quote_idd"]`, 1)
	if mistake == string(sample) {
		t.Fatal("the sample configuration has no list key to write a mistake after")
	}
	write(mistake)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	refused := `configuration not reloaded, keeping the old one: interceptor: ` + config +
		`:16: methods[1].diff.ignoredPaths[0]: "quote_idd": examples.pricing.v1.QuoteResponse: no field "quote_idd" in examples.pricing.v1.QuoteResponse`
	read := await("the refusal", func(l string) bool { return strings.Contains(l, "configuration not reloaded") })
	if l := read[len(read)-1]; !strings.HasSuffix(l, refused) {
		t.Errorf("refused with\n%s\nwant\n%s", l, refused)
	}
	await("listings compared without quotes, still", listingsOnly)
	for _, l := range await("two more counts", func() func(string) bool {
		n := 0
		return func(l string) bool {
			if _, _, ok := counts(l); ok {
				n++
			}
			return n == 2
		}
	}()) {
		if q, _, ok := counts(l); ok && q > 0 {
			t.Errorf("quotes compared after the refused reload: %s", l)
		}
	}

	// SIGTERM stops it, cleanly.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	await("the end", func(l string) bool { return strings.HasSuffix(l, "stopping") })
	for range lines {
	}
	exited = true
	if err := cmd.Wait(); err != nil {
		t.Errorf("the program ended with %v:\n%s", err, stderr.String())
	}
	t.Logf("the program said:\n%s", strings.Join(log, "\n"))
}
