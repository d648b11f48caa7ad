// Command quickstart runs the parallel run demo: a legacy and a candidate
// pricing service on loopback, a client that mirrors every call from one to
// the other, a few thousand calls of every kind, and a summary of what the
// comparison found. Every report is also written as JSON Lines.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/parallelrun/grpc-parallelrun/examples/pricing"
	"github.com/parallelrun/grpc-parallelrun/interceptor"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

func main() {
	out := flag.String("out", filepath.Join(os.TempDir(), "parallelrun-quickstart.jsonl"), "where to write the reports (JSON Lines)")
	quotes := flag.Int("quotes", pricing.DefaultTraffic.Quotes, "unary Quote calls")
	listings := flag.Int("listings", pricing.DefaultTraffic.Listings, "server-streaming ListPrices calls")
	baskets := flag.Int("baskets", pricing.DefaultTraffic.Baskets, "bidirectional Basket calls")
	flag.Parse()
	traffic := pricing.DefaultTraffic
	traffic.Quotes, traffic.Listings, traffic.Baskets = *quotes, *listings, *baskets
	if err := run(context.Background(), os.Stdout, os.Stderr, *out, traffic); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, stdout, progress io.Writer, out string, traffic pricing.Traffic) error {
	jsonl, err := sink.CreateJSONL(out)
	if err != nil {
		return err
	}
	defer jsonl.Close()
	demo, err := pricing.Start(
		interceptor.WithSink(jsonl),
		// A demo's run is short: judge it on a hundred calls, at once.
		interceptor.WithReadiness(readiness.WithPolicy(&parallelrunv1.ReadinessPolicy{
			MinCompared:       proto.Int64(100),
			MinStreakCalls:    proto.Int64(100),
			MinStreakDuration: durationpb.New(0),
		})),
	)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "legacy service on %s, candidate on %s\n", demo.LegacyAddr, demo.CandidateAddr)

	start := time.Now()
	traffic.Progress = func(done, total int) {
		if done%250 == 0 || done == total {
			fmt.Fprintf(progress, "\r%d/%d calls", done, total)
		}
	}
	runErr := pricing.Run(ctx, demo.Client, traffic)
	fmt.Fprintln(progress)
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := demo.Close(closeCtx); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	// Where the candidate stands, as the status page and the summary
	// command show it.
	fmt.Fprintln(stdout)
	if err := readiness.WriteText(stdout, demo.ParallelRun.Status()); err != nil {
		return err
	}
	noise(stdout, demo.ParallelRun.Signals())
	fmt.Fprintf(stdout, "\n%s in %s; every report is in %s\n", "done", time.Since(start).Round(time.Millisecond), out)
	return nil
}

// noise says what noise probes found, and how many mismatches came before
// the noise was known (the warm-up: their signatures involve a noise field).
func noise(w io.Writer, signals []interceptor.MethodSignals) {
	fmt.Fprintln(w, "\nnoise found by asking the legacy service twice (its differences no longer count)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tfield\tcandidate differs\tlegacy differs from itself")
	warmUp := map[string]int64{}
	for _, ms := range signals {
		var fields []string
		for _, f := range ms.Fields {
			if f.Noise {
				fields = append(fields, f.Field)
				fmt.Fprintf(tw, "%s\t%s\t%.0f%% of %d calls\t%.0f%% of %d probes\n", ms.Method, f.Field,
					100*float64(f.CandidateDiffs)/float64(ms.Compared), ms.Compared, 100*float64(f.NoiseDiffs)/float64(ms.Probes), ms.Probes)
			}
		}
		for _, sig := range ms.Signatures {
			if involves(sig, fields) {
				warmUp[ms.Method] += sig.Count
			}
		}
	}
	tw.Flush()
	for _, m := range slices.Sorted(maps.Keys(warmUp)) {
		fmt.Fprintf(w, "%d mismatches of %s came in the warm-up, before its noise was known\n", warmUp[m], m)
	}
}

// involves says whether a signature has a difference in one of fields (a
// field stands for the fields below it too: computed_at for its nanos).
func involves(sig interceptor.Signature, fields []string) bool {
	for _, fk := range sig.FieldKinds {
		field, _, _ := strings.Cut(fk, ":")
		for _, f := range fields {
			if field == f || strings.HasPrefix(field, f+".") {
				return true
			}
		}
	}
	return false
}
