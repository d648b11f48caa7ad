package main

import (
	"fmt"
	"io"
	"os"
)

// Exit statuses.
const (
	exitOK    = 0 // ready, or every replayed call fixed
	exitFail  = 1 // not ready, not fixed, or malformed input
	exitUsage = 2 // a usage error, or input that cannot be read
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args (without the program name) and returns
// the exit status. Tests run the command through it, in process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	switch args[0] {
	case "summary":
		return runSummary(args[1:], stdin, stdout, stderr)
	case "replay":
		return runReplay(args[1:], stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" {
			// The subcommand prints its own usage.
			return run([]string{args[1], "-h"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	fmt.Fprintf(stderr, "parallelrun: unknown command %q\n\n%s", args[0], usageText)
	return exitUsage
}

const usageText = `parallelrun reads the reports of a parallel run (JSON Lines, as sink.JSONL writes them).

Usage:

	parallelrun summary [flags] [REPORTS...]
		judge whether the candidate is ready to be promoted
	parallelrun replay --candidate ADDR [flags] [REPORTS...]
		replay the mismatched calls against a candidate and say what is fixed
	parallelrun help COMMAND
		the flags of a command

REPORTS are files, merged by report time; none, or "-", reads standard input.
Flags may come before or after the files.

Exit status: 0 ready / all fixed, 1 not, or malformed input, 2 usage error or unreadable file.
`
