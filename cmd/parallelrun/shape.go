package main

import "fmt"

// maxDepth bounds the nesting of a line: in JSON objects and arrays, and
// in messages (protojson's RecursionLimit, 10,000 by default). protojson
// reads a google.protobuf.Any by scanning its whole object for "@type",
// then serializes the message it decoded into the Any's bytes, and does
// both again at every Any nested in it: reading costs the nesting depth
// times the line, which a small limit makes linear. A report is three
// levels above the messages it holds, and a service's messages are rarely
// a few dozen deep.
const maxDepth = 100

// maxListElements bounds the elements of a report's lists (differences,
// noise, requests and legacy_replies) together. An element decoded takes
// about fifty times the three bytes of JSON an empty one needs ("{},"), so
// that without a bound a line of 16 MiB would decode to 800 MiB. The
// interceptor writes far fewer: protodiff reports 32 differences by
// default and a stream 64 at most, and the requests and replies kept fit
// in its request limit (64 KiB by default).
const maxListElements = 10_000

// checkShape reads a line before protojson decodes it, and says whether
// it nests deeper than maxDepth or its top-level lists hold more than
// maxListElements elements together. It looks at the bytes that give JSON
// its structure (brackets, commas, quotes, backslashes in strings) and
// nothing else: no memory, one pass. It does not check the rest of the
// syntax, which protojson does: where a line stops being JSON, protojson
// stops decoding, and up to there the line is JSON, whose structure this
// reads exactly; so protojson never decodes more elements or levels than
// counted here.
func checkShape(line []byte) error {
	depth, elements := 0, 0
	inList := false    // the value at depth 1 being read is an array
	expecting := false // in that array, after '[' or ','
	inString, escaped := false, false
	for _, c := range line {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			continue
		}
		if depth == 2 && inList {
			switch {
			case c == ',':
				expecting = true
			case c != ']' && expecting:
				expecting = false
				if elements++; elements > maxListElements {
					return fmt.Errorf("more than %s elements in the report's lists (differences, noise, requests, legacy_replies), more than the interceptor writes", count(maxListElements))
				}
			}
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if depth++; depth > maxDepth {
				return fmt.Errorf("nested more than %d levels deep", maxDepth)
			}
			if depth == 2 {
				inList, expecting = c == '[', c == '['
			}
		case '}', ']':
			if depth--; depth <= 0 {
				return nil // the rest, if any, is protojson's to reject
			}
		}
	}
	return nil
}
