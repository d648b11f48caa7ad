package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// maxLineBytes bounds one line of a report file. A report holds at most a
// request and the legacy replies, each within the interceptor's request
// limit (64 KiB by default), so a longer line is not one the sink wrote.
const maxLineBytes = 16 << 20

// readBufferBytes is each input's read buffer; longer lines are gathered
// in a buffer shared by all inputs.
const readBufferBytes = 64 << 10

// input is one file of reports, or standard input, read line by line.
type input struct {
	name  string // as given, made safe to print (clean); "stdin" for standard input
	r     *bufio.Reader
	c     io.Closer // nil for standard input
	size  int64     // -1 when not known (standard input, a pipe)
	line  int       // the number of the last line read
	bytes int64     // bytes read so far
	index int       // the position among the inputs, to break ties in time
}

// openInputs opens the named files, or standard input for "-" or when no
// name is given. An input that cannot be opened is an error naming it;
// the ones already opened are closed. The names are kept cleaned, since
// the instances that wrote the files may have chosen them, and they are
// printed on a terminal.
func openInputs(names []string, stdin io.Reader) ([]*input, error) {
	if len(names) == 0 {
		names = []string{"-"}
	}
	var ins []*input
	stdinUsed := false
	for i, name := range names {
		in := &input{name: clean(name, maxNameLen), size: -1, index: i}
		if name == "-" {
			if stdinUsed {
				closeInputs(ins)
				return nil, errors.New(`standard input ("-") is given twice`)
			}
			stdinUsed = true
			in.name = "stdin"
			in.r = bufio.NewReaderSize(stdin, readBufferBytes)
		} else {
			f, err := os.Open(name)
			if err == nil {
				var st os.FileInfo
				if st, err = f.Stat(); err == nil && st.IsDir() {
					err = errors.New("is a directory")
				} else if err == nil && st.Mode().IsRegular() {
					in.size = st.Size()
				}
				if err != nil {
					f.Close()
				}
			}
			if err != nil {
				closeInputs(ins)
				return nil, fmt.Errorf("%s: %w", in.name, withoutPath(err))
			}
			in.r, in.c = bufio.NewReaderSize(f, readBufferBytes), f
		}
		ins = append(ins, in)
	}
	return ins, nil
}

// where names a line of the input, for messages.
func (in *input) where(line int) string { return fmt.Sprintf("%s:%d", in.name, line) }

// withoutPath is an error of the os package without the path it holds,
// which is the raw name of an input: "open: no such file or directory".
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

func closeInputs(ins []*input) {
	for _, in := range ins {
		if in.c != nil {
			in.c.Close()
		}
	}
}

// totalSize is the bytes of all inputs, or 0 when one has no known size.
func totalSize(ins []*input) int64 {
	var n int64
	for _, in := range ins {
		if in.size < 0 {
			return 0
		}
		n += in.size
	}
	return n
}

// errLineTooLong marks a line longer than maxLineBytes, which was skipped
// without being kept.
var errLineTooLong = fmt.Errorf("line longer than %d MiB, skipped", maxLineBytes>>20)

// readLine reads the next line, without its end. A line that fits in the
// read buffer is returned from it, valid until the next read; a longer one
// is gathered in *buf, up to maxLineBytes; past that the rest of the line
// is read and dropped, and the error is errLineTooLong. At the end of the
// input it returns io.EOF (after the last line, even one without a
// newline); another error is one of reading.
func (in *input) readLine(buf *[]byte) ([]byte, error) {
	chunk, err := in.r.ReadSlice('\n')
	in.bytes += int64(len(chunk))
	if err == nil || (err == io.EOF && len(chunk) > 0) {
		in.line++
		return trimEOL(chunk), nil
	}
	if err != bufio.ErrBufferFull {
		return nil, err
	}
	// A long line: gather it.
	b := appendBounded((*buf)[:0], chunk)
	tooLong := false
	for {
		chunk, err = in.r.ReadSlice('\n')
		in.bytes += int64(len(chunk))
		if !tooLong {
			if len(b)+len(chunk) > maxLineBytes+2 { // the line and "\r\n"
				tooLong = true
				b = b[:0]
			} else {
				b = appendBounded(b, chunk)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		break
	}
	in.line++
	*buf = b
	if tooLong || len(trimEOL(b)) > maxLineBytes {
		return nil, errLineTooLong
	}
	return trimEOL(b), nil
}

// appendBounded appends like append, but grows b to no more than the
// longest line: append's own growth could take it a quarter past.
func appendBounded(b, chunk []byte) []byte {
	if need := len(b) + len(chunk); need > cap(b) {
		grown := make([]byte, len(b), min(max(2*cap(b), need), maxLineBytes+2))
		copy(grown, b)
		b = grown
	}
	return append(b, chunk...)
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
