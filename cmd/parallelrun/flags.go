package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// errUsage is a usage error already reported on standard error.
var errUsage = errors.New("usage")

// newFlagSet returns a flag set that reports its errors, and its usage,
// to stderr rather than exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses the flags of fs wherever they stand among args, before,
// between or after the file arguments, and returns the file arguments in
// their order. The flag package stops at the first argument that is not a
// flag, so the flags are moved to the front first: an argument that starts
// with "-" (but "-" alone, standard input) is a flag, followed by its value
// unless it is a bool flag or holds "=". After "--" every argument is a
// file. A -h or -help prints the usage to stdout and returns flag.ErrHelp.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	var flags, files []string
	help := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			files = append(files, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			files = append(files, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		help = help || name == "h" || name == "help"
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // Parse reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if help {
		fs.SetOutput(stdout)
		fs.Usage()
		return nil, flag.ErrHelp
	}
	if err := fs.Parse(flags); err != nil {
		return nil, errUsage
	}
	return files, nil
}

// usageError reports a usage error of a subcommand, with its usage.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "parallelrun %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}

// autoBool is a bool flag that may be left unset, to mean "decide":
// --progress, --progress=true and --progress=false.
type autoBool struct {
	set, value bool
}

func (b *autoBool) String() string {
	if b == nil || !b.set {
		return "auto"
	}
	return strconv.FormatBool(b.value)
}

func (b *autoBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.set, b.value = true, v
	return nil
}

func (b *autoBool) IsBoolFlag() bool { return true }

// stringList is a flag that may be repeated.
type stringList []string

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// inputFlags are the flags of both commands about reading reports.
type inputFlags struct {
	allowMalformed bool
	progress       autoBool
}

func (in *inputFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&in.allowMalformed, "allow-malformed", false, "exit 0 even when some lines could not be read (they are still reported and counted)")
	fs.Var(&in.progress, "progress", "draw a progress line on standard error (default: when it is a terminal)")
}

// showProgress says whether to draw the progress line on w.
func (in *inputFlags) showProgress(w io.Writer) bool {
	if in.progress.set {
		return in.progress.value
	}
	return isTerminal(w)
}

// isTerminal says whether w is a terminal (a character device), without a
// dependency: a file, a pipe or a buffer is not.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
