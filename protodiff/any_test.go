package protodiff_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/anypb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// noLeak fails if a secret appears anywhere in a result.
func noLeak(t *testing.T, r protodiff.Result, secrets ...string) {
	t.Helper()
	for _, d := range r.Differences {
		for _, s := range secrets {
			if strings.Contains(d.Path+d.Legacy+d.Candidate, s) {
				t.Errorf("%s leaks %q: %q -> %q", d.Path, s, d.Legacy, d.Candidate)
			}
		}
	}
}

func TestRedactionInsideAny(t *testing.T) {
	quoteURL := `type.googleapis.com/parallelrun.difftest.v1.Quote`
	x := &pb.Kitchen{Any: mustAnyT(&pb.Quote{QuoteId: "q1", CustomerEmail: "ann@secret"})}
	y := &pb.Kitchen{Any: mustAnyT(&pb.Quote{QuoteId: "q2", CustomerEmail: "bob@secret"})}
	// Walked: the payload's fields are compared, the sensitive one redacted.
	r := protodiff.Diff(x, y)
	check(t, r,
		want{path: "any.(parallelrun.difftest.v1.Quote).quote_id", kind: protodiff.Changed, legacy: `"q1"`, candidate: `"q2"`},
		want{path: "any.(parallelrun.difftest.v1.Quote).customer_email", kind: protodiff.Changed, legacy: protodiff.Redacted, candidate: protodiff.Redacted})
	noLeak(t, r, "secret")

	// Rendered whole, because the other side lacks it: unpacked, redacted.
	r = protodiff.Diff(x, &pb.Kitchen{})
	check(t, r, want{path: "any", kind: protodiff.Removed,
		legacy: `{type_url:"` + quoteURL + `" value:{quote_id:"q1" customer_email:[REDACTED]}}`})
	// Inside a rendered message, in a list, nested in another Any.
	inner := &pb.Kitchen{RAny: []*anypb.Any{mustAnyT(&pb.Leaf{Sku: "A1", Note: "SECRET"})}}
	r = protodiff.Diff(&pb.Kitchen{}, &pb.Kitchen{Child: &pb.Kitchen{Any: mustAnyT(inner)}})
	check(t, r, want{path: "child", kind: protodiff.Added,
		candidate: `{any:{type_url:"type.googleapis.com/parallelrun.difftest.v1.Kitchen" value:{r_any:[{type_url:"type.googleapis.com/parallelrun.difftest.v1.Leaf" value:{sku:"A1" note:[REDACTED]}}]}}}`})
	noLeak(t, r, "SECRET")
	// The reported case: the candidate drops the Any.
	r = protodiff.Diff(&pb.Quote{Detail: mustAnyT(&pb.Leaf{Sku: "A1", Note: "SECRET"})}, &pb.Quote{})
	check(t, r, want{path: "detail", kind: protodiff.Removed,
		legacy: `{type_url:"type.googleapis.com/parallelrun.difftest.v1.Leaf" value:{sku:"A1" note:[REDACTED]}}`})

	// WithRedactedPaths reaches inside payloads, walked and rendered.
	d := mustNew(t, protodiff.WithRedactedPaths("any.(parallelrun.difftest.v1.Quote).quote_id"))
	r = d.Diff(x, y)
	check(t, r,
		want{path: "any.(parallelrun.difftest.v1.Quote).quote_id", kind: protodiff.Changed, legacy: protodiff.Redacted, candidate: protodiff.Redacted},
		want{path: "any.(parallelrun.difftest.v1.Quote).customer_email", kind: protodiff.Changed, legacy: protodiff.Redacted, candidate: protodiff.Redacted})
	r = d.Diff(x, &pb.Kitchen{})
	check(t, r, want{path: "any", kind: protodiff.Removed,
		legacy: `{type_url:"` + quoteURL + `" value:{quote_id:[REDACTED] customer_email:[REDACTED]}}`})
	noLeak(t, r, "q1", "secret")

	// What cannot be unpacked is shown by its type URL and size, never its
	// bytes: an unknown type, bytes that do not decode, WithRawAny.
	unknownType := &anypb.Any{TypeUrl: "example.com/x.Y", Value: []byte("SECRET")}
	r = protodiff.Diff(&pb.Kitchen{Any: unknownType}, &pb.Kitchen{})
	check(t, r, want{path: "any", kind: protodiff.Removed, legacy: `{type_url:"example.com/x.Y" value:<6 bytes>}`})
	bad := &anypb.Any{TypeUrl: quoteURL, Value: []byte("\x0a\x06SECRET\xff")}
	r = protodiff.Diff(&pb.Kitchen{Any: bad}, &pb.Kitchen{})
	check(t, r, want{path: "any", kind: protodiff.Removed, legacy: `{type_url:"` + quoteURL + `" value:<9 bytes>}`})
	r = protodiff.Diff(x, &pb.Kitchen{}, protodiff.WithRawAny())
	noLeak(t, r, "secret")
	if !strings.HasSuffix(r.Differences[0].Legacy, " bytes>}") {
		t.Errorf("raw: %q", r.Differences[0].Legacy)
	}
}
