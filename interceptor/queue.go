package interceptor

import "sync"

// queue is a FIFO of bounded length between the goroutines of a stream.
// It holds only what is queued: a channel of the same bound would take
// its whole size when each stream starts, outside the memory budget.
type queue[T any] struct {
	mu    sync.Mutex
	items []T
	head  int
	max   int
	// ready holds a token once something was pushed; a consumer that
	// found the queue empty waits for it.
	ready chan struct{}
}

func newQueue[T any](max int) *queue[T] {
	return &queue[T]{max: max, ready: make(chan struct{}, 1)}
}

// push queues v, unless max items are queued already and room is not
// forced (the end of a stream always goes in, after the items).
func (q *queue[T]) push(v T, force bool) bool {
	q.mu.Lock()
	if !force && len(q.items)-q.head >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// pop takes the first item, if there is one.
func (q *queue[T]) pop() (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero T
	if q.head == len(q.items) {
		return zero, false
	}
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head >= 32 && 2*q.head >= len(q.items):
		// A queue that never empties would otherwise grow at its back
		// for ever: move what is left to the front (amortized O(1)).
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return v, true
}
