// Package termtext makes text that comes from hostile input safe to print
// on a terminal. Reports hold values an unfinished service produced, and a
// value with escape sequences could rewrite the screen of whoever reads a
// summary; [Clean] escapes them and cuts what is too long.
package termtext

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean returns s with control characters, invalid UTF-8 and other
// unprintable runes escaped as Go escapes them, cut after max runes with
// "…". The no-break space that protobuf's errors put at random prints as
// a space.
func Clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		if n == max {
			b.WriteString("…")
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r == '\u00a0':
			b.WriteByte(' ')
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
		n++
	}
	return b.String()
}
