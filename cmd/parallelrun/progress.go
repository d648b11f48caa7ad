package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progressInterval is the shortest time between two redraws: at most ten
// a second, so that drawing never costs more than the reading.
const progressInterval = 100 * time.Millisecond

// progress draws one line on standard error, redrawn in place, with what
// has been read: bytes of the total size when every input is a file of
// known size, reports otherwise. It is drawn from the reading goroutine,
// as it reads (no goroutine of its own), and erased at the end and before
// any other message, so that messages never mix with it. Output to
// standard output clears it too (both may be the same terminal), from
// another goroutine: hence the lock.
type progress struct {
	mu    sync.Mutex
	w     io.Writer // nil: off
	total int64     // bytes of all inputs; 0 when unknown
	last  time.Time
	shown bool
	now   func() time.Time
}

func newProgress(w io.Writer, on bool, total int64) *progress {
	p := &progress{total: total, now: time.Now}
	if on {
		p.w = w
	}
	return p
}

// update redraws the line, unless it was drawn less than an interval ago.
func (p *progress) update(bytes, reports int64) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.Sub(p.last) < progressInterval {
		return
	}
	p.last = now
	var line string
	if p.total > 0 {
		line = fmt.Sprintf("reading: %s of %s (%d%%), %s", bytesText(bytes), bytesText(p.total), 100*bytes/p.total, plural(reports, "report", "reports"))
	} else {
		line = "reading: " + plural(reports, "report", "reports")
	}
	// "\r" goes back to the line's start, ESC [K erases what a longer
	// line left there.
	fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	p.shown = true
}

// clear erases the line, if it is drawn; the next update draws it again.
func (p *progress) clear() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.shown {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K")
	p.shown = false
}
