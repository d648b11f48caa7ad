package interceptor

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// noiseProbe is a second legacy call made for a mirrored call, to learn
// what differs between two legacy answers to one request. Its goroutine
// owns it until done is closed.
type noiseProbe struct {
	done  chan struct{}
	side  side
	reply proto.Message
	// usable: the call ended and its reply, if any, fit in the budget.
	usable bool
}

// startProbe sends the call's request to the second legacy instance, in a
// goroutine of its own with a place of its own in flight, when the method
// is probed and the call is drawn. It returns nil otherwise.
func (c *unaryCall) startProbe() *noiseProbe {
	e := c.e
	if !e.probes || rand.Float64() >= e.cfg.noise.ProbeRate {
		return nil
	}
	var target grpc.ClientConnInterface = e.cfg.noise.Secondary
	opts := c.opts
	if target == nil {
		if c.cc == nil {
			return nil
		}
		// The legacy connection itself: the parallel run must let the
		// probe through, not mirror it.
		target, opts = c.cc, append(opts[:len(opts):len(opts)], CallOption{mode: modeProbe})
	}
	if ok, _ := c.p.adm.enter(); !ok {
		return nil
	}
	pr := &noiseProbe{done: make(chan struct{})}
	go func() {
		defer close(pr.done)
		defer c.p.adm.leave()
		defer func() {
			if v := recover(); v != nil {
				pr.usable = false
				c.p.onError(fmt.Errorf("interceptor: %s: panic in a noise probe: %v", e.name, v))
			}
		}()
		timeout := e.cfg.noise.Timeout
		if timeout == 0 {
			timeout = e.cfg.timeout
		}
		if timeout == 0 {
			timeout = c.p.maxTimeout
			if !c.deadline.IsZero() {
				timeout = min(timeout, time.Until(c.deadline))
			}
		}
		ctx, cancel := context.WithTimeout(c.parent, timeout)
		defer cancel()
		md := metadata.MD{}
		if out, ok := metadata.FromOutgoingContext(ctx); ok {
			md = out.Copy()
		}
		md.Set(RoleKey, "noise-probe")
		ctx = metadata.NewOutgoingContext(ctx, md)
		reply := c.replyType.New().Interface()
		start := time.Now()
		err := target.Invoke(ctx, c.method, c.req, reply, opts...)
		pr.side = side{done: true, err: err, dur: time.Since(start)}
		switch {
		case err != nil && callFailure(status.Code(err)):
			// Out of time or unreachable: says nothing of the legacy
			// answers.
		case err == nil && !c.mem.take(int64(proto.Size(reply))):
		default:
			pr.reply, pr.usable = reply, true
		}
	}()
	return pr
}

// probeDiffs compares the legacy answer with the second one, under the
// method's options. probed is false when the probe gave nothing to compare.
func (c *unaryCall) probeDiffs(f *facts, legacyReply proto.Message, pr *noiseProbe) (diffs []protodiff.Difference, probed bool) {
	if pr == nil {
		return nil, false
	}
	<-pr.done
	// A second answer with another status code says the instance is
	// unwell or different, not that the legacy service disagrees with
	// itself in its answers: counted as noise, a failing second instance
	// would hide a candidate's failures.
	if !pr.usable || !f.legacy.done || status.Code(pr.side.err) != status.Code(f.legacy.err) {
		return nil, false
	}
	pf := facts{legacy: f.legacy, candidate: pr.side}
	if f.legacy.err == nil && pr.side.err == nil {
		if legacyReply == nil {
			return nil, false
		}
		r := c.e.cfg.differ.Diff(legacyReply, pr.reply)
		pf.diffs, pf.truncated = r.Differences, r.Truncated
	}
	v := decide(&pf, c.e.cfg.compareMessage, math.MaxInt, nil)
	if v.outcome != parallelrunv1.Outcome_OUTCOME_MATCH && v.outcome != parallelrunv1.Outcome_OUTCOME_MISMATCH {
		return nil, false
	}
	return v.diffs, true
}
