package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// result is what a run of the command printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the command in process, as the binary would.
func runCmd(t testing.TB, stdin io.Reader, args ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errOut bytes.Buffer
	code := run(args, stdin, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func (r result) String() string {
	return "exit " + string(rune('0'+r.code)) + "\n--- stdout\n" + r.stdout + "--- stderr\n" + r.stderr
}

// squash turns each run of spaces into one, so that tests do not depend on
// the widths of aligned columns.
func squash(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), " ")
}
