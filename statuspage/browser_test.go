//go:build unix

package statuspage_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/statuspage"
)

// chromiumBin finds Chromium: CHROMIUM_BIN, else chromium on the PATH.
func chromiumBin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("CHROMIUM_BIN"); bin != "" {
		return bin
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no Chromium to render the page in: set CHROMIUM_BIN, or install it (Debian: apt-get install --no-install-recommends chromium)")
	}
	return bin
}

// chromium runs headless Chromium with args and returns what it wrote to
// stdout and stderr. Its processes (the browser forks helpers that can
// outlive it) are in a group of their own, all killed when it exits or the
// time runs out, and waited for before its profile directory is removed.
func chromium(t *testing.T, bin string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
		// The console, CSP violations included, goes to stderr.
		"--enable-logging=stderr", "--v=0",
	}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	group := cmd.Process.Pid
	err := cmd.Wait()
	killGroup(t, group)
	if err != nil {
		t.Fatalf("Chromium %s: %v\nstderr:\n%s", strings.Join(args, " "), err, lastLines(errOut.String(), 30))
	}
	return out.Bytes(), errOut.Bytes()
}

// killGroup kills every process left in the group and waits until none
// is.
func killGroup(t *testing.T, group int) {
	t.Helper()
	for range 500 {
		if err := syscall.Kill(-group, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("Chromium's processes (group %d) still there after 5s", group)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// cspViolations returns the console lines in which Chromium said it
// blocked something by the page's Content-Security-Policy.
func cspViolations(stderr []byte) []string {
	var found []string
	for line := range strings.SplitSeq(string(stderr), "\n") {
		if strings.Contains(line, "Content Security Policy") || strings.Contains(line, "Refused to") {
			found = append(found, line)
		}
	}
	return found
}

// TestBrowser renders the page in a real browser: the DOM it builds from
// the served HTML holds the values of a hostile status as text and no
// element of theirs, its styling is allowed by the page's own CSP, and it
// looks like something.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bin := chromiumBin(t)
	st := hostileStatus()
	st.MirroringDisabled = true
	page, err := statuspage.New(func() *parallelrunv1.RunStatus { return st },
		statuspage.WithTraceURL("http://127.0.0.1:16686/trace/{trace_id}"),
		statuspage.WithRefresh(0))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/parallelrun/", http.StripPrefix("/parallelrun", page))
	// A control: the same page under a policy that allows no style, to
	// show that Chromium reports what a policy blocks.
	mux.HandleFunc("/control/", func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		page.ServeHTTP(rec, httptest.NewRequestWithContext(r.Context(), http.MethodGet, "/", nil))
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		_, _ = w.Write(rec.Body.Bytes())
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	t.Run("DOM", func(t *testing.T) {
		dom, stderr := chromium(t, bin, "--dump-dom", srv.URL+"/parallelrun/")
		doc := parse(t, string(dom))
		checkInert(t, doc)
		if v := cspViolations(stderr); len(v) > 0 {
			t.Errorf("the page's CSP blocked part of it:\n%s", strings.Join(v, "\n"))
		}
		if got := textOf(one(t, doc, "kill switch banner", class("kill"))); !strings.Contains(got, "Mirroring stopped (kill switch)") {
			t.Errorf("banner %q", got)
		}
		if got := textOf(one(t, doc, "overall verdict", class("big"))); got != "not ready" {
			t.Errorf("verdict %q, want not ready", got)
		}
		rows := all(one(t, doc, "methods table", class("methods")), tag("tr"))[1:]
		if len(rows) != len(st.Methods) {
			t.Fatalf("%d method rows, want %d", len(rows), len(st.Methods))
		}
		for i, row := range rows {
			c := cells(row)
			if c[0] != st.Methods[i].Method {
				t.Errorf("row %d names %q, want %q", i, c[0], st.Methods[i].Method)
			}
		}
		want := "http://127.0.0.1:16686/trace/" + traceA
		var linked bool
		for _, a := range all(doc, tag("a")) {
			linked = linked || attr(a, "href") == want
		}
		if !linked {
			t.Errorf("no link to %s", want)
		}
		text := textOf(doc)
		for _, v := range []string{hostileImg, hostileScript, `javascript:alert(3)`} {
			if !strings.Contains(text, v) {
				t.Errorf("the text of the page lacks %q", v)
			}
		}
	})

	t.Run("control", func(t *testing.T) {
		_, stderr := chromium(t, bin, "--dump-dom", srv.URL+"/control/")
		if len(cspViolations(stderr)) == 0 {
			t.Errorf("Chromium reported no CSP violation for a page whose style the policy blocks: the check of the page's own policy would see nothing either")
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		shot := filepath.Join(t.ArtifactDir(), "statuspage.png")
		chromium(t, bin, "--hide-scrollbars", "--screenshot="+shot, "--window-size=1280,900", srv.URL+"/parallelrun/")
		f, err := os.Open(shot)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := png.Decode(f)
		if err != nil {
			t.Fatalf("decode the screenshot: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 900 {
			t.Errorf("screenshot %v, want 1280x900", b)
		}
		colours, banner := countColours(img, color.RGBA{0xb4, 0x23, 0x18, 0xff})
		// Text in one colour on another is already dozens of shades of
		// anti-aliasing; a styled page with badges has hundreds.
		if colours < 50 {
			t.Errorf("the screenshot has %d colours: an empty or unstyled page", colours)
		}
		// The kill switch's banner is a block of the style sheet's red:
		// there only if the style applied.
		if banner < 5000 {
			t.Errorf("%d pixels of the banner's red, want a block of them: the style sheet did not apply", banner)
		}
		t.Logf("screenshot %s: %d colours, %d banner pixels", shot, colours, banner)
	})
}

// countColours counts the distinct colours of img and its pixels of the
// colour want.
func countColours(img image.Image, want color.RGBA) (colours, pixels int) {
	seen := map[color.RGBA]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			seen[c] = true
			if c == want {
				pixels++
			}
		}
	}
	return len(seen), pixels
}
