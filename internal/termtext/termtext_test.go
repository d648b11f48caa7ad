package termtext

import "testing"

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 10, "plain"},
		{"\x1b[2Jcleared", 20, `\x1b[2Jcleared`},
		{"a\nb\tc", 10, `a\nb\tc`},
		{"bad \xff byte", 20, `bad \xff byte`},
		{"no\u00a0break", 20, "no break"},
		{"\u202eright-to-left", 30, `\u202eright-to-left`},
		{"héllo wörld", 5, "héllo…"},
		{"", 5, ""},
	} {
		if got := Clean(tc.in, tc.max); got != tc.want {
			t.Errorf("Clean(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234", -999: "-999"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}
