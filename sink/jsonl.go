package sink

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// JSONL writes each report as one line of protojson (JSON Lines), for jq,
// a log pipeline or a later replay. The request is written with its type,
// so a type in the global registry comes out as readable JSON.
type JSONL struct {
	mu    sync.Mutex
	w     *bufio.Writer
	close io.Closer
	opts  protojson.MarshalOptions
}

var _ Sink = (*JSONL)(nil)

// NewJSONL writes to w, buffered; call Flush (the interceptor does on
// Close) to write out the rest.
func NewJSONL(w io.Writer) *JSONL {
	return &JSONL{w: bufio.NewWriter(w), opts: protojson.MarshalOptions{UseProtoNames: true}}
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

// Publish writes r as one line.
func (j *JSONL) Publish(_ context.Context, r *parallelrunv1.Report) error {
	b, err := j.opts.Marshal(r)
	if err != nil {
		return fmt.Errorf("sink: JSONL: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("sink: JSONL: %w", err)
	}
	return nil
}

// Flush writes out buffered lines.
func (j *JSONL) Flush(context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("sink: JSONL: %w", err)
	}
	return nil
}

// Close flushes and, for a file from CreateJSONL, closes the file.
func (j *JSONL) Close() error {
	err := j.Flush(context.Background())
	if j.close != nil {
		if cerr := j.close.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("sink: JSONL: %w", cerr)
		}
	}
	return err
}
