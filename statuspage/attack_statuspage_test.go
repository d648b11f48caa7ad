package statuspage_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime/debug"
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/statuspage"
)

// attackChildEnv names, in a child process of the test binary, the case
// it renders: a crash of the page must not take the test binary down.
const attackChildEnv = "STATUSPAGE_ATTACK_CHILD"

// Durations and timestamps at the edges of what protobuf calls valid
// (CheckValid accepts them) saturate when turned into a time.Duration, to
// the smallest one, whose negation is itself. The page writes negative
// spans as "-" and the span of the negation, so it recurses until the
// goroutine's stack overflows: a fatal error that no recover catches, and
// the whole program serving the page dies. The handler promises a page in
// time linear in the message, and a 500 at worst.
func TestAttackExtremeDurationsDoNotCrashThePage(t *testing.T) {
	cases := map[string]func() *parallelrunv1.RunStatus{
		// A streak duration of minus 10,000 years: valid, and AsDuration
		// saturates it to math.MinInt64.
		"streak duration": func() *parallelrunv1.RunStatus {
			return &parallelrunv1.RunStatus{Methods: []*parallelrunv1.MethodStatus{{
				Method: "pkg.Service/Method",
				Streak: &parallelrunv1.Streak{Calls: 1, Duration: &durationpb.Duration{Seconds: -315_576_000_000}},
			}}}
		},
		// A status taken at year 1 with a field last seen in year 9999:
		// both valid timestamps; now.Sub(lastSeen) saturates.
		"timestamps": func() *parallelrunv1.RunStatus {
			return &parallelrunv1.RunStatus{
				Time: &timestamppb.Timestamp{Seconds: -62_135_596_800},
				Methods: []*parallelrunv1.MethodStatus{{
					Method: "pkg.Service/Method",
					TopFields: []*parallelrunv1.FieldSummary{{
						Field: "quote.id", Count: 1,
						LastSeen: &timestamppb.Timestamp{Seconds: 253_402_300_799},
					}},
				}},
			}
		},
		// The same through the start of the status, the first report.
		"start": func() *parallelrunv1.RunStatus {
			return &parallelrunv1.RunStatus{
				Time:  &timestamppb.Timestamp{Seconds: -62_135_596_800},
				Start: &timestamppb.Timestamp{Seconds: 253_402_300_799},
			}
		},
	}

	if name := os.Getenv(attackChildEnv); name != "" {
		// The child: render the page, and say how it went by the exit
		// status. A stack of 64 MiB is plenty for a page.
		debug.SetMaxStack(64 << 20)
		st := cases[name]
		if st == nil {
			os.Exit(3)
		}
		h, err := statuspage.New(func() *parallelrunv1.RunStatus { return st() })
		if err != nil {
			os.Exit(4)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		if w.Code != http.StatusOK && w.Code != http.StatusInternalServerError {
			os.Exit(5)
		}
		os.Exit(0)
	}

	for name := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestAttackExtremeDurationsDoNotCrashThePage$")
			cmd.Env = append(os.Environ(), attackChildEnv+"="+name)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if err != nil {
				msg := stderr.Bytes()
				if len(msg) > 600 {
					msg = msg[:600]
				}
				t.Errorf("serving a status with an extreme but valid %s killed the process (%v):\n%s", name, err, msg)
			}
		})
	}
}
