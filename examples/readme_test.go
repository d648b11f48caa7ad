package examples_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	// The README's configuration is checked against the pricing demo's
	// types.
	_ "github.com/parallelrun/grpc-parallelrun/proto/examples/pricing/v1"
)

// TestReadmeSnippetsAreExamples checks that every Go snippet of the README
// stands, line for line, in one of the testable examples, which compile
// and run with the tests: a snippet cannot drift from working code.
func TestReadmeSnippetsAreExamples(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("..", "*", "example_test.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	var examples []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		examples = append(examples, normalize(string(b)))
	}
	snippets := goBlocks(string(readme))
	if len(snippets) == 0 {
		t.Fatal("the README has no Go snippets")
	}
	for _, s := range snippets {
		found := false
		for _, e := range examples {
			if strings.Contains(e, normalize(s)) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("this README snippet is in no example_test.go:\n%s", s)
		}
	}
}

// TestReadmeConfigurationIsValid checks that every JSON block of the
// README is a configuration that ParseConfig accepts, checked against the
// types of the service it names.
func TestReadmeConfigurationIsValid(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := fenced(string(readme), "json")
	if len(blocks) == 0 {
		t.Fatal("the README has no JSON configuration")
	}
	for _, b := range blocks {
		cfg, err := interceptor.ParseConfig("README.md", []byte(b))
		if err != nil {
			t.Errorf("%v in:\n%s", err, b)
			continue
		}
		if len(cfg.GetMethods()) == 0 {
			t.Errorf("a configuration without methods:\n%s", b)
		}
	}
}

// goBlocks returns the contents of the ```go fences of a Markdown text.
func goBlocks(md string) []string { return fenced(md, "go") }

// fenced returns the contents of the fences of a language in a Markdown
// text.
func fenced(md, lang string) []string {
	var blocks []string
	open := "```" + lang + "\n"
	for {
		start := strings.Index(md, open)
		if start < 0 {
			return blocks
		}
		md = md[start+len(open):]
		end := strings.Index(md, "```")
		if end < 0 {
			return blocks
		}
		blocks = append(blocks, md[:end])
		md = md[end+3:]
	}
}

// normalize drops indentation and blank lines, so that a snippet matches
// the body of the function it comes from.
func normalize(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return "\n" + strings.Join(lines, "\n") + "\n"
}
