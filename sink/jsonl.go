package sink

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/encoding/protojson"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// JSONL writes each report as one line of protojson (JSON Lines), for jq,
// a log pipeline or a later replay. The request is written with its type,
// so a type in the global registry comes out as readable JSON.
//
// JSONL is safe for concurrent use: one write to the writer at a time. The
// contexts of Publish and Flush bound how long they wait, not the writes
// themselves, which no context can stop. When ctx ends while the call waits
// for an earlier write to finish, nothing is written and the call returns
// ctx's error. When ctx ends during the call's own write, the call returns
// ctx's error (unless the write is done by then) and the write goes on in
// the background until the writer returns; the next Publish or Flush waits
// for it, and a Flush that succeeds later means every line before it is
// out. A stuck writer thus costs one goroutine, the one blocked in it, and
// no caller more than its context.
type JSONL struct {
	// sem, of capacity 1, is held by whoever uses w. A channel rather than
	// a mutex, so that waiting for it can end with a context.
	sem   chan struct{}
	w     *bufio.Writer
	close io.Closer
	opts  protojson.MarshalOptions
}

var _ Sink = (*JSONL)(nil)

// NewJSONL writes to w, buffered; call Flush (the interceptor does on
// Close) to write out the rest.
func NewJSONL(w io.Writer) *JSONL {
	return &JSONL{
		sem:  make(chan struct{}, 1),
		w:    bufio.NewWriter(w),
		opts: protojson.MarshalOptions{UseProtoNames: true},
	}
}

// CreateJSONL creates or truncates the file at path; Close flushes and
// closes it.
func CreateJSONL(path string) (*JSONL, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	j := NewJSONL(f)
	j.close = f
	return j, nil
}

// Publish writes r as one line. The line goes to the writer once the buffer
// is full, or at Flush.
func (j *JSONL) Publish(ctx context.Context, r *parallelrunv1.Report) error {
	b, err := j.opts.Marshal(r)
	if err != nil {
		return fmt.Errorf("sink: JSONL: %w", err)
	}
	line := append(b, '\n')
	if err := j.do(ctx, func() error {
		_, err := j.w.Write(line)
		return err
	}); err != nil {
		return fmt.Errorf("sink: JSONL: Publish: %w", err)
	}
	return nil
}

// Flush writes out the buffered lines. When ctx ends first, the write goes
// on in the background (see [JSONL]).
func (j *JSONL) Flush(ctx context.Context) error {
	if err := j.do(ctx, j.w.Flush); err != nil {
		return fmt.Errorf("sink: JSONL: Flush: %w", err)
	}
	return nil
}

// Close flushes, waiting as long as the writer takes, and, for a file from
// CreateJSONL, closes the file.
func (j *JSONL) Close() error {
	err := j.Flush(context.Background())
	if j.close != nil {
		if cerr := j.close.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("sink: JSONL: %w", cerr)
		}
	}
	return err
}

// do runs write, which uses w, once it holds sem, waiting no longer than
// ctx.
func (j *JSONL) do(ctx context.Context, write func() error) error {
	// A free writer is taken even when ctx has ended: a select would pick
	// at random between the two.
	select {
	case j.sem <- struct{}{}:
	default:
		select {
		case j.sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("an earlier write is still under way: %w", ctx.Err())
		}
	}
	if ctx.Done() == nil {
		// ctx never ends: nothing to wait for but the write.
		defer func() { <-j.sem }()
		return recovered(write)
	}
	done := make(chan error, 1)
	go func() {
		err := recovered(write)
		<-j.sem
		done <- err
	}()
	return wait(ctx, done)
}

// wait returns the result sent on done, or an error when ctx ends first.
func wait(ctx context.Context, done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// A write that is over counts as done, though ctx ended too: select
		// chooses at random between ready cases.
		select {
		case err := <-done:
			return err
		default:
			return fmt.Errorf("the write goes on in the background: %w", ctx.Err())
		}
	}
}

// recovered runs write with a panic of the writer, user code, turned into
// an error: on a goroutine of ours it would end the program.
func recovered(write func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if e, ok := v.(error); ok {
				err = fmt.Errorf("writer panicked: %w", e)
			} else {
				err = fmt.Errorf("writer panicked: %v", v)
			}
		}
	}()
	return write()
}
