// Package readme reads the shell commands of a Markdown file, so that a
// test can run each one as it is written: a command in the README that
// nothing runs is a command that may have stopped working.
//
// [Commands] returns the lines of the ```sh fences, one command each, with
// its line number; [StrayCommands] finds code spans outside the fences that
// look like commands, which the tests reject, so that every command stands
// where [Commands] finds it.
package readme

import (
	"bufio"
	"strings"
)

// Command is one line of a ```sh fence.
type Command struct {
	// Line is the command as written, without its indentation.
	Line string
	// Number is its line number in the file, from 1.
	Number int
}

// Commands returns the commands of the ```sh fences of md, in order.
// Blank lines and comment lines are left out.
func Commands(md string) []Command {
	var out []Command
	in := false
	sc := bufio.NewScanner(strings.NewReader(md))
	sc.Buffer(nil, len(md)+1)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case !in && l == "```sh":
			in = true
		case in && l == "```":
			in = false
		case in && l != "" && !strings.HasPrefix(l, "#"):
			out = append(out, Command{Line: l, Number: n})
		}
	}
	return out
}

// commandWords begin the code spans that StrayCommands takes for commands.
var commandWords = []string{"go ", "curl ", "jq ", "bash ", "kill ", "buf ", "apt-get "}

// StrayCommands returns the code spans outside the ```sh fences of md
// that begin with a command word ("go ", "curl ", ...), with their line
// numbers.
func StrayCommands(md string) []Command {
	var out []Command
	in := false
	sc := bufio.NewScanner(strings.NewReader(md))
	sc.Buffer(nil, len(md)+1)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "```") {
			in = !in
			continue
		}
		if in {
			continue
		}
		// Code spans are the odd parts between backticks.
		parts := strings.Split(l, "`")
		for i := 1; i < len(parts); i += 2 {
			for _, w := range commandWords {
				if strings.HasPrefix(parts[i], w) {
					out = append(out, Command{Line: parts[i], Number: n})
					break
				}
			}
		}
	}
	return out
}
