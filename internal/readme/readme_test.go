package readme

import (
	"reflect"
	"testing"
)

const sample = "# Title\n\nRun `go test ./...` here.\n\n```sh\ngo run ./x   # a comment\n\n# only a comment\ncurl -g 'a{b}'\n```\n\n```go\ngo func() {}()\n```\n\n  ```sh\n  jq . f\n  ```\n\n```yaml\nkey: `go run y`\n```\n"

func TestCommands(t *testing.T) {
	got := Commands(sample)
	want := []Command{{"go run ./x   # a comment", 6}, {"curl -g 'a{b}'", 9}, {"jq . f", 17}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Commands = %+v, want %+v", got, want)
	}
}

func TestStrayCommands(t *testing.T) {
	got := StrayCommands(sample)
	want := []Command{{"go test ./...", 3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("StrayCommands = %+v, want %+v", got, want)
	}
}
