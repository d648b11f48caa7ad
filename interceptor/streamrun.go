package interceptor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// HeaderPath is the path of differences in response header metadata, as
// in `grpc-header["x-pricing-version"]`.
const HeaderPath = "grpc-header"

// errStopped ends the candidate's side when the comparison stopped before
// the candidate did.
var errStopped = errors.New("interceptor: the comparison stopped")

// run is the candidate side of a stream: it opens the candidate stream,
// feeds it through the feeder, pairs its replies with the legacy ones as
// both arrive, decides and records. It keeps only what one side has sent
// and the other not yet.
func (s *mirrorStream) run() {
	p := s.p
	defer p.adm.leave()
	defer s.mem.close()
	defer s.stopAfter()
	var f facts
	c := pairing{s: s}
	func() {
		defer func() {
			if v := recover(); v != nil {
				s.fail(fmt.Sprintf("panic: %v", v))
			}
		}()
		c.run(&f)
	}()
	// The comparison is over: a reason to abandon it that comes now comes
	// too late to matter.
	if !s.reason.CompareAndSwap(nil, &finished) {
		if r := *s.reason.Load(); r == reasonInternal {
			f.internal = *s.problem.Load()
		} else {
			f.abandoned = r
		}
	}
	// From here on nothing more is copied, and the candidate ends.
	s.stopped.Store(true)
	s.sendsOff.Store(true)
	s.cancel()
	if c.fed != nil {
		<-c.fed.done
	}
	in := s.sent(c.fed)
	in.replies, in.repliesOmitted = c.replies, max(int(s.received.Load())-len(c.replies), 0)
	f.legacy.msgs = int(s.received.Load())
	f.candidate.msgs = c.candCount
	v := decide(&f, s.cfg.compareMessage, MaxStreamDifferences, nil)
	if v.outcome == parallelrunv1.Outcome_OUTCOME_MATCH || v.outcome == parallelrunv1.Outcome_OUTCOME_MISMATCH {
		// The replies count: those kept for an unordered comparison are
		// matched now, and the headers compared; then decide again.
		guard(&f, func() {
			c.finishOrder()
			c.finishUnordered()
			if s.cfg.compareHeader {
				c.compareHeader()
			}
		})
		f.diffs, f.truncated, f.incomplete = c.diffs, c.truncated, c.incomplete
		v = decide(&f, s.cfg.compareMessage, MaxStreamDifferences, func(d []protodiff.Difference) ([]protodiff.Difference, []protodiff.Difference) {
			return s.e.signals.observe(d, false, nil)
		})
	}
	known, failed := candidateHealth(&f)
	s.e.breaker.done(s.probe, known, failed)
	p.record(s.parent, s.e, s.start, true, &f, v, in)
}

// pairing is the run goroutine's state: it pairs the candidate's replies
// with the legacy ones by position (or keeps them all, for unordered
// replies) and collects the differences.
type pairing struct {
	s          *mirrorStream
	cs         grpc.ClientStream // the candidate stream; nil if it did not open
	fed        *feeder           // nil if the candidate stream did not open
	legacyEnd  *legacyEnd
	legacyPos  int // legacy replies taken from the queue
	candCount  int
	diffs      []protodiff.Difference
	truncated  bool
	incomplete string
	// Unordered replies, kept until both ends.
	keptLegacy []proto.Message
	keptCand   []proto.Message
	// Ordered replies that differ by position, kept to tell a reordering
	// (see finishOrder); orderUnknown once they could not all be kept.
	orderLegacy, orderCand []proto.Message
	orderUnknown           bool
	// The first legacy replies, kept for the report of a mismatch within
	// the size limit of the requests, so that it can be replayed.
	replies      []proto.Message
	repliesBytes int
	repliesFull  bool
}

// run gathers the facts of both sides.
func (c *pairing) run(f *facts) {
	s := c.s
	cctx, cancel, err := s.p.candidateContext(s.parent, s.deadline, s.cfg)
	if err != nil {
		s.fail(err.Error())
		return
	}
	defer cancel()
	start := time.Now()
	cs, err := s.p.candidate.NewStream(cctx, s.desc, s.method, s.opts...)
	if err != nil {
		s.sendsOff.Store(true)
		f.candidate = side{done: true, err: err, dur: time.Since(start)}
	} else {
		c.cs = cs
		c.fed = &feeder{s: s, done: make(chan struct{})}
		go c.fed.feed(cctx, cs)
		err = c.receive(cctx, cs)
		if err != errStopped {
			f.candidate = side{done: true, err: err, dur: time.Since(start)}
		}
	}
	if f.candidate.err != nil && callFailure(status.Code(f.candidate.err)) {
		// The candidate failed as a call: that is the outcome whatever
		// the legacy stream does next, unless it has already ended the
		// same way. No need to wait for it, or to copy more of it.
		c.takeQueued()
		s.stopped.Store(true)
	} else if !c.legacyRest(cctx) {
		if s.callerCtx.Err() != nil {
			f.callerGone = true
		} else {
			s.abandon(AbandonLegacyUnfinished)
		}
		return
	}
	if e := c.legacyEnd; e != nil {
		f.legacy, f.callerGone, f.legacyPanicked = e.side, e.callerGone, e.panicked
	}
}

// receive reads the candidate's replies until its stream ends, comparing
// each with the legacy reply at the same position. It returns the
// candidate's final status (nil for OK), or errStopped when the comparison
// stopped first.
func (c *pairing) receive(ctx context.Context, cs grpc.ClientStream) error {
	s := c.s
	for {
		m := s.e.resp.New().Interface()
		if err := cs.RecvMsg(m); err != nil {
			if err == io.EOF {
				return nil
			}
			if s.stopped.Load() {
				return errStopped
			}
			return err
		}
		c.candCount++
		// A candidate reply is held until it is compared: it counts too.
		size := int64(proto.Size(m))
		if !s.take(size) {
			return errStopped
		}
		switch {
		case s.cfg.unordered:
			if len(c.keptCand) >= s.cfg.maxMessages {
				s.abandon(AbandonMemoryBound)
				return errStopped
			}
			c.keptCand = append(c.keptCand, m)
			c.takeQueued()
			continue // its share stays taken
		case len(c.diffs) >= MaxStreamDifferences:
			// Whatever it differs in would be thrown away; it still takes
			// its legacy counterpart's place.
			if !c.skipLegacy(ctx) {
				s.mem.give(size)
				return c.stopReason(ctx)
			}
			c.truncated, c.orderUnknown = true, true
		default:
			legacy, ok := c.nextLegacy(ctx)
			switch {
			case ok:
				r := s.cfg.differ.Diff(legacy, m)
				c.add(c.candCount-1, r)
				if !r.Equal() {
					c.keepForOrder(legacy, m)
				}
			case c.legacyEnd != nil && !c.legacyEnd.callerGone && !c.legacyEnd.panicked:
				c.add(c.candCount-1, s.cfg.differ.Diff(nil, m))
				c.keepForOrder(nil, m)
			case c.legacyEnd != nil:
				s.mem.give(size)
				return errStopped
			default:
				s.mem.give(size)
				return c.stopReason(ctx)
			}
		}
		s.mem.give(size)
		if !s.desc.ServerStreams {
			// gRPC has read the status along with the one reply.
			return nil
		}
	}
}

// stopReason is receive's result when the wait for a legacy reply ended
// without one: a stop, or the candidate's deadline, which comes before the
// legacy stream's next reply or its end. The legacy stream is then
// unfinished at the deadline, whatever it does next.
func (c *pairing) stopReason(ctx context.Context) error {
	if !c.s.stopped.Load() && ctx.Err() != nil {
		c.s.abandon(AbandonLegacyUnfinished)
	}
	return errStopped
}

// next waits for the next legacy event; false when ctx ends first. What
// has arrived is taken before any reason to stop is heard: the candidate's
// deadline may well have passed already, and a stop queues the end before
// it cancels.
func (c *pairing) next(ctx context.Context) (legacyEvent, bool) {
	for {
		if ev, ok := c.s.legacy.pop(); ok {
			return ev, true
		}
		select {
		case <-c.s.legacy.ready:
		case <-ctx.Done():
			return c.s.legacy.pop()
		}
	}
}

// nextLegacy waits for the next legacy reply. It returns false when the
// legacy stream has ended without one (legacyEnd is then set), or when the
// comparison stops.
func (c *pairing) nextLegacy(ctx context.Context) (proto.Message, bool) {
	if c.legacyEnd != nil {
		return nil, false
	}
	ev, ok := c.next(ctx)
	switch {
	case !ok:
		return nil, false
	case ev.end != nil:
		c.legacyEnd = ev.end
		return nil, false
	}
	return c.decode(ev.reply)
}

// skipLegacy takes the next legacy reply without decoding it; false when
// there is none.
func (c *pairing) skipLegacy(ctx context.Context) bool {
	if c.legacyEnd != nil {
		return !c.legacyEnd.callerGone && !c.legacyEnd.panicked
	}
	ev, ok := c.next(ctx)
	switch {
	case !ok:
		return false
	case ev.end != nil:
		c.legacyEnd = ev.end
		return !ev.end.callerGone && !ev.end.panicked
	}
	if c.keepsMore() {
		// Not compared, but still kept for the report.
		_, ok := c.decode(ev.reply)
		return ok
	}
	c.s.mem.give(held(ev.reply))
	c.legacyPos++
	return true
}

// takeQueued takes the legacy events that have arrived, without waiting.
func (c *pairing) takeQueued() {
	for c.legacyEnd == nil {
		ev, ok := c.s.legacy.pop()
		if !ok {
			return
		}
		c.takeRest(ev)
	}
}

// legacyRest takes the legacy replies the candidate did not match, up to
// the legacy end. It returns false if the end does not come before ctx
// ends (the candidate's deadline, or a stop).
func (c *pairing) legacyRest(ctx context.Context) bool {
	for c.legacyEnd == nil {
		ev, ok := c.next(ctx)
		if !ok {
			return false
		}
		c.takeRest(ev)
	}
	return true
}

func (c *pairing) takeRest(ev legacyEvent) {
	s := c.s
	switch {
	case ev.end != nil:
		c.legacyEnd = ev.end
	case s.stopped.Load():
		s.mem.give(held(ev.reply))
	case s.cfg.unordered:
		if m, ok := c.decode(ev.reply); ok {
			c.keep(m)
		}
	case len(c.diffs) >= MaxStreamDifferences:
		// Rendering it would be thrown away.
		if c.keepsMore() {
			c.decode(ev.reply)
		} else {
			s.mem.give(held(ev.reply))
			c.legacyPos++
		}
		c.truncated, c.orderUnknown = true, true
	default:
		if m, ok := c.decode(ev.reply); ok {
			c.add(c.legacyPos-1, s.cfg.differ.Diff(m, nil))
			c.keepForOrder(m, nil)
		}
	}
}

// keepForOrder keeps the replies that differ by position, within the
// bounds: if they are the same as a multiset, the stream differs only in
// its order, which is one difference, not one per position.
func (c *pairing) keepForOrder(legacy, candidate proto.Message) {
	s := c.s
	if c.orderUnknown {
		return
	}
	for _, k := range []struct {
		m    proto.Message
		kept *[]proto.Message
	}{{legacy, &c.orderLegacy}, {candidate, &c.orderCand}} {
		if k.m == nil {
			continue
		}
		if len(*k.kept) >= s.cfg.maxMessages || !s.mem.take(int64(proto.Size(k.m))) {
			c.orderUnknown = true
			return
		}
		*k.kept = append(*k.kept, k.m)
	}
}

// OrderPath is the path of the one difference of a stream whose replies
// are the same as the legacy ones, in another order.
const OrderPath = "reply-order"

// finishOrder replaces the positional differences of a stream whose
// replies are the legacy ones in another order by one that says so.
func (c *pairing) finishOrder() {
	if c.s.cfg.unordered || c.orderUnknown || len(c.orderLegacy) == 0 || len(c.orderLegacy) != len(c.orderCand) {
		return
	}
	if !c.s.cfg.differ.DiffUnordered(c.orderLegacy, c.orderCand).Equal() {
		return
	}
	n := strconv.Itoa(len(c.orderLegacy))
	c.diffs, c.truncated = []protodiff.Difference{{Path: OrderPath, Field: OrderPath, Kind: protodiff.Changed,
		Legacy:    n + " replies in one order",
		Candidate: "the same " + n + " replies in another order (UnorderedReplies compares them as a multiset, if their order is not part of the contract)"}}, false
}

// decode decodes a copy of a legacy reply and gives its share back.
func (c *pairing) decode(b []byte) (proto.Message, bool) {
	s := c.s
	s.mem.give(held(b))
	c.legacyPos++
	m := s.e.resp.New().Interface()
	if err := copyDecoding.Unmarshal(b, m); err != nil {
		s.fail(fmt.Sprintf("decoding a copy of legacy reply %d: %v", c.legacyPos-1, err))
		return nil, false
	}
	c.keepReply(m, len(b))
	return m, true
}

// keepsMore says whether the next legacy reply would be kept for the
// report, if it fits.
func (c *pairing) keepsMore() bool {
	return !c.repliesFull && len(c.replies) == c.legacyPos
}

// keepReply keeps a legacy reply for the report while the replies so far
// are all kept and fit, so that the report holds a prefix of the stream.
//
// A kept reply costs its size and a fixed share for the message around it
// (an empty reply is not free), and nothing is kept when no sink would
// get the report.
func (c *pairing) keepReply(m proto.Message, size int) {
	s := c.s
	cost := size + queuedItemBytes
	if c.repliesFull || len(s.p.reports) == 0 || len(c.replies) != c.legacyPos-1 ||
		c.repliesBytes+cost > s.p.maxRequestBytes || !s.mem.take(int64(cost)) {
		c.repliesFull = true
		return
	}
	c.repliesBytes += cost
	c.replies = append(c.replies, m)
}

// keep holds a legacy reply for an unordered comparison, within the
// bounds.
func (c *pairing) keep(m proto.Message) {
	s := c.s
	if len(c.keptLegacy) >= s.cfg.maxMessages || !s.take(int64(proto.Size(m))) {
		s.abandon(AbandonMemoryBound)
		return
	}
	c.keptLegacy = append(c.keptLegacy, m)
}

// finishUnordered matches the kept replies as multisets, in about n log n
// (protodiff hashes them into buckets).
func (c *pairing) finishUnordered() {
	if !c.s.cfg.unordered {
		return
	}
	r := c.s.cfg.differ.DiffUnordered(c.keptLegacy, c.keptCand)
	for _, d := range r.Differences {
		c.appendDiff(d)
	}
	c.truncated = c.truncated || r.Truncated
	if c.incomplete == "" {
		c.incomplete = r.Incomplete
	}
}

// compareHeader compares the response headers, but for the keys that
// differ by nature.
func (c *pairing) compareHeader() {
	if c.cs == nil || c.legacyEnd == nil {
		return
	}
	legacy := c.legacyEnd.header
	cand, err := c.cs.Header()
	if err != nil {
		return
	}
	keys := map[string]bool{}
	for k := range legacy {
		keys[k] = true
	}
	for k := range cand {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		if k != "content-type" && !strings.HasPrefix(k, "grpc-") && !c.s.cfg.ignoredHeader[k] {
			sorted = append(sorted, k)
		}
	}
	slices.Sort(sorted)
	for _, k := range sorted {
		l, r := strings.Join(legacy.Get(k), ","), strings.Join(cand.Get(k), ",")
		if l == r {
			continue
		}
		kind := protodiff.Changed
		switch {
		case len(legacy.Get(k)) == 0:
			kind = protodiff.Added
		case len(cand.Get(k)) == 0:
			kind = protodiff.Removed
		}
		if c.s.cfg.redactedHeader[k] {
			if l != "" {
				l = protodiff.Redacted
			}
			if r != "" {
				r = protodiff.Redacted
			}
		}
		// Compared as sent, shown as valid UTF-8 (-bin values are bytes).
		l, r = strings.ToValidUTF8(l, "\uFFFD"), strings.ToValidUTF8(r, "\uFFFD")
		c.appendDiff(protodiff.Difference{Path: HeaderPath + "[" + strconv.Quote(k) + "]", Field: HeaderPath, Kind: kind, Legacy: l, Candidate: r})
	}
}

// add records the differences of the replies at position i, their paths
// prefixed with it: `[3].price.units`.
func (c *pairing) add(i int, r protodiff.Result) {
	prefix := "[" + strconv.Itoa(i) + "]"
	for _, d := range r.Differences {
		if d.Path == "" {
			d.Path = prefix
		} else {
			d.Path = prefix + "." + d.Path
		}
		c.appendDiff(d)
	}
	c.truncated = c.truncated || r.Truncated
	if c.incomplete == "" {
		c.incomplete = r.Incomplete
	}
}

func (c *pairing) appendDiff(d protodiff.Difference) {
	if len(c.diffs) >= MaxStreamDifferences {
		c.truncated = true
		return
	}
	c.diffs = append(c.diffs, d)
}

// feeder sends the caller's messages to the candidate, in order, until
// the caller closes its side or the candidate stream ends. It keeps the
// first ones for the report; they are read once done is closed.
type feeder struct {
	s         *mirrorStream
	done      chan struct{}
	kept      []proto.Message
	keptBytes int
	full      bool // a message did not fit: the kept ones are the first
}

func (fd *feeder) feed(ctx context.Context, cs grpc.ClientStream) {
	s := fd.s
	defer close(fd.done)
	defer s.sendsOff.Store(true)
	defer func() {
		// Middleware on the candidate's connection runs here.
		if v := recover(); v != nil {
			s.fail(fmt.Sprintf("panic sending to the candidate: %v", v))
		}
	}()
	for {
		it, ok := s.sends.pop()
		if !ok {
			select {
			case <-s.sends.ready:
				continue
			case <-ctx.Done():
				return
			}
		}
		if it.closeSend {
			_ = cs.CloseSend()
			return
		}
		m, ok := fd.take(it)
		if !ok {
			return
		}
		if cs.SendMsg(m) != nil {
			return // the stream is over; RecvMsg tells how
		}
	}
}

// take decodes one of the caller's messages; it keeps it for the report
// while they fit, with its share of the budget, or gives the share back.
func (fd *feeder) take(it streamItem) (proto.Message, bool) {
	s := fd.s
	m := s.e.req.New().Interface()
	if err := copyDecoding.Unmarshal(it.b, m); err != nil {
		s.mem.give(held(it.b))
		s.fail(fmt.Sprintf("decoding a copy of a request: %v", err))
		return nil, false
	}
	if !fd.full && fd.keptBytes+len(it.b) <= s.p.maxRequestBytes {
		fd.keptBytes += len(it.b)
		fd.kept = append(fd.kept, m)
	} else {
		fd.full = true
		s.mem.give(held(it.b))
	}
	return m, true
}

// sent collects what the caller sent, for the report: what the feeder kept
// and what it never took.
func (s *mirrorStream) sent(fed *feeder) sent {
	if fed == nil {
		fed = &feeder{s: s}
	}
	for {
		it, ok := s.sends.pop()
		if !ok {
			break
		}
		if !it.closeSend && !fed.full && fed.keptBytes+len(it.b) <= s.p.maxRequestBytes {
			fed.take(it)
		} else {
			fed.full = true
		}
	}
	total := int(s.sentN.Load())
	if !s.desc.ClientStreams {
		if len(fed.kept) > 0 {
			return sent{request: fed.kept[0]}
		}
		return sent{requestOmitted: total > 0 && s.p.maxRequestBytes > 0}
	}
	return sent{requests: fed.kept, omitted: max(total-len(fed.kept), 0)}
}
