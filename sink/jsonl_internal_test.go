package sink

import (
	"context"
	"testing"
)

// A write that is over when ctx ends counts as done. Each round has both
// ready, so a plain select would report the context half the time.
func TestWaitPrefersAFinishedWrite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 1000 {
		done := make(chan error, 1)
		done <- nil
		if err := wait(ctx, done); err != nil {
			t.Fatalf("wait = %v, for a write that was over", err)
		}
	}
}
