package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// answer is what the candidate answered to a replayed call, compared with
// the recorded legacy answer.
type answer struct {
	code       codes.Code
	message    string
	replies    int
	latency    time.Duration
	diffs      []protodiff.Difference
	truncated  bool
	incomplete string
}

// replay makes the call and compares; it runs in a worker. A panic (of
// a comparison, on input no one has seen before) is this call's error, not
// the end of the others.
func (j *job) replay(rp *replayer) {
	defer func() {
		if v := recover(); v != nil {
			j.result, j.err = nil, fmt.Errorf("panic: %v", v)
		}
	}()
	a, err := j.call(rp)
	if err != nil {
		j.err = err
		return
	}
	j.result = j.classify(rp, a)
}

// call sends the recorded requests to the candidate, within --timeout,
// and compares what comes back with the recorded replies as it comes.
func (j *job) call(rp *replayer) (answer, error) {
	ctx, cancel := context.WithTimeout(rp.outgoing(context.Background()), rp.flags.timeout)
	defer cancel()
	method := "/" + string(j.md.Parent().FullName()) + "/" + string(j.md.Name())
	isStream := streaming(j.md)
	cmp := &replyComparison{differ: j.differ.d, legacy: j.legacy, stream: isStream}
	start := time.Now()
	var err error
	var unaryReply proto.Message
	if isStream {
		err = j.stream(ctx, cancel, rp.conn, method, cmp)
	} else {
		unaryReply = dynamicpb.NewMessage(j.md.Output())
		err = rp.conn.Invoke(ctx, method, j.requests[0], unaryReply)
	}
	a := answer{latency: time.Since(start), replies: cmp.n}
	st := status.Convert(err)
	a.code, a.message = st.Code(), st.Message()
	if a.code != j.legacyCode && callFailure(a.code) {
		// Not an answer of the candidate's logic: nothing to compare.
		return a, errCallFailed{st}
	}
	// A unary call's replies are compared only when both succeeded, as the
	// interceptor does; a stream's replies always are, by position.
	switch {
	case isStream:
		cmp.finish()
	case a.code == codes.OK && j.legacyCode == codes.OK:
		cmp.reply(unaryReply)
		a.replies = 1
	}
	a.diffs, a.truncated, a.incomplete = cmp.diffs, cmp.truncated, cmp.incomplete
	switch {
	case a.code != j.legacyCode:
		a.diffs = append(a.diffs, protodiff.Difference{Path: interceptor.StatusCodePath, Field: interceptor.StatusCodePath,
			Kind: protodiff.Changed, Legacy: codeName(j.legacyCode), Candidate: codeName(a.code)})
	case a.code != codes.OK && j.compareMsg && a.message != j.legacyMsg:
		a.diffs = append(a.diffs, protodiff.Difference{Path: interceptor.StatusMessagePath, Field: interceptor.StatusMessagePath,
			Kind: protodiff.Changed, Legacy: j.legacyMsg, Candidate: a.message})
	}
	return a, nil
}

// errCallFailed is a replayed call that failed as a call.
type errCallFailed struct{ st *status.Status }

func (e errCallFailed) Error() string {
	return "the call failed: " + codeName(e.st.Code()) + ": " + e.st.Message()
}

// stream replays a stream: the recorded requests are sent from a goroutine
// of their own, then CloseSend, while the replies are read here, so that
// a server that answers as it reads never waits for a client that is not
// reading. It returns the stream's status (nil for OK).
func (j *job) stream(ctx context.Context, cancel context.CancelFunc, conn *grpc.ClientConn, method string, cmp *replyComparison) error {
	desc := &grpc.StreamDesc{StreamName: string(j.md.Name()), ServerStreams: j.md.IsStreamingServer(), ClientStreams: j.md.IsStreamingClient()}
	cs, err := conn.NewStream(ctx, desc, method)
	if err != nil {
		return err
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for _, m := range j.requests {
			if cs.SendMsg(m) != nil {
				return // the stream is over; RecvMsg says how
			}
		}
		_ = cs.CloseSend()
	}()
	defer func() {
		// The stream is over: a send still blocked ends with it.
		cancel()
		<-sent
	}()
	for {
		m := dynamicpb.NewMessage(j.md.Output())
		if err := cs.RecvMsg(m); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		cmp.reply(m)
		if !desc.ServerStreams {
			return nil // gRPC has read the status along with the one reply
		}
	}
}

// Bounds of a stream's comparison: the differences kept, as the
// interceptor keeps them, and the replies that differ by position kept to
// tell a reordering.
const (
	maxOrderMessages = 1024
	maxOrderBytes    = 16 << 20
)

// replyComparison compares the candidate's replies with the recorded ones
// by position as they arrive, the way the interceptor does: paths are
// prefixed with the position in a stream (`[3].price.units`), replies one
// side lacks are added or removed, and a stream whose replies are the
// legacy ones in another order is one difference that says so.
type replyComparison struct {
	differ     *protodiff.Differ
	legacy     []proto.Message
	stream     bool
	n          int // candidate replies
	diffs      []protodiff.Difference
	truncated  bool
	incomplete string

	orderLegacy, orderCand []proto.Message
	orderBytes             int
	orderUnknown           bool
}

func (c *replyComparison) reply(m proto.Message) {
	i := c.n
	c.n++
	if len(c.diffs) >= interceptor.MaxStreamDifferences {
		c.truncated, c.orderUnknown = true, true
		return
	}
	var legacy proto.Message
	if i < len(c.legacy) {
		legacy = c.legacy[i]
	}
	r := c.differ.Diff(legacy, m)
	c.add(i, r)
	if !r.Equal() {
		c.keepForOrder(legacy, m)
	}
}

// finish compares the legacy replies the candidate did not send, and
// tells a reordering.
func (c *replyComparison) finish() {
	for i := c.n; i < len(c.legacy); i++ {
		if len(c.diffs) >= interceptor.MaxStreamDifferences {
			c.truncated, c.orderUnknown = true, true
			break
		}
		c.add(i, c.differ.Diff(c.legacy[i], nil))
		c.keepForOrder(c.legacy[i], nil)
	}
	if !c.stream || c.orderUnknown || len(c.orderLegacy) == 0 || len(c.orderLegacy) != len(c.orderCand) {
		return
	}
	if !c.differ.DiffUnordered(c.orderLegacy, c.orderCand).Equal() {
		return
	}
	n := len(c.orderLegacy)
	c.diffs, c.truncated = []protodiff.Difference{{Path: interceptor.OrderPath, Field: interceptor.OrderPath, Kind: protodiff.Changed,
		Legacy: count(int64(n)) + " replies in one order", Candidate: "the same " + count(int64(n)) + " replies in another order"}}, false
}

func (c *replyComparison) keepForOrder(legacy, cand proto.Message) {
	if c.orderUnknown {
		return
	}
	for _, k := range []struct {
		m    proto.Message
		kept *[]proto.Message
	}{{legacy, &c.orderLegacy}, {cand, &c.orderCand}} {
		if k.m == nil {
			continue
		}
		c.orderBytes += proto.Size(k.m)
		if len(*k.kept) >= maxOrderMessages || c.orderBytes > maxOrderBytes {
			c.orderUnknown = true
			c.orderLegacy, c.orderCand = nil, nil
			return
		}
		*k.kept = append(*k.kept, k.m)
	}
}

// add records the differences of the replies at position i; a unary
// call's paths have no position, a stream's have (even one of a single
// reply, a client stream's, as in the interceptor).
func (c *replyComparison) add(i int, r protodiff.Result) {
	for _, d := range r.Differences {
		if c.stream {
			prefix := "[" + strconv.Itoa(i) + "]"
			if d.Path == "" {
				d.Path = prefix
			} else {
				d.Path = prefix + "." + d.Path
			}
		}
		if len(c.diffs) >= interceptor.MaxStreamDifferences && c.stream {
			c.truncated = true
			break
		}
		c.diffs = append(c.diffs, d)
	}
	c.truncated = c.truncated || r.Truncated
	if c.incomplete == "" {
		c.incomplete = r.Incomplete
	}
}
