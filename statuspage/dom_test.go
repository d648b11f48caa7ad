package statuspage_test

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// parse parses a page as a browser would, failing the test on error.
func parse(t *testing.T, page string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatalf("parse the page: %v", err)
	}
	return doc
}

// all returns the elements under n, in document order, for which match
// holds.
func all(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var found []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			found = append(found, d)
		}
	}
	return found
}

func tag(name string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == name }
}

func class(name string) func(*html.Node) bool {
	return func(n *html.Node) bool { return slices.Contains(strings.Fields(attr(n, "class")), name) }
}

func id(value string) func(*html.Node) bool {
	return func(n *html.Node) bool { return attr(n, "id") == value }
}

// one returns the only element under n that every match holds for.
func one(t *testing.T, n *html.Node, what string, match ...func(*html.Node) bool) *html.Node {
	t.Helper()
	found := all(n, func(n *html.Node) bool {
		for _, m := range match {
			if !m(n) {
				return false
			}
		}
		return true
	})
	if len(found) != 1 {
		t.Fatalf("%d elements %s, want 1", len(found), what)
	}
	return found[0]
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textOf is the text under n, with runs of white space made one space, as
// a reader sees it.
func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// cells returns the texts of the cells of a table row.
func cells(row *html.Node) []string {
	var texts []string
	for c := range row.ChildNodes() {
		if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
			texts = append(texts, textOf(c))
		}
	}
	return texts
}

// checkInert fails the test if the page holds an element or an attribute
// that could run or load something: the page itself has none, so any is
// an injection.
func checkInert(t *testing.T, doc *html.Node) {
	t.Helper()
	for _, n := range all(doc, func(*html.Node) bool { return true }) {
		switch n.Data {
		case "script", "img", "iframe", "object", "embed", "link", "base", "form", "svg", "math":
			t.Errorf("injected element <%s>", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "src" {
				t.Errorf("injected attribute %s=%q on <%s>", a.Key, a.Val, n.Data)
			}
			if a.Key == "href" && !strings.HasPrefix(a.Val, "#") && a.Val != "status.json" && !strings.HasPrefix(a.Val, "http://127.0.0.1:16686/trace/") {
				t.Errorf("unexpected link %q", a.Val)
			}
		}
	}
}
