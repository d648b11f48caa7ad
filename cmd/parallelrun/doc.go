// Command parallelrun reads the reports of a parallel run, the JSON Lines
// that sink.JSONL writes (one parallelrun.v1.Report per line), and answers
// the two questions a team asks of them: is the candidate ready to be
// promoted, and does a fix of the candidate really fix the mismatches that
// were found.
//
//	parallelrun summary [flags] [REPORTS...]
//	parallelrun replay --candidate ADDR [flags] [REPORTS...]
//
// Summary judges the reports with package readiness against a readiness
// policy (flags or defaults) and prints, per method, its verdict, its
// counts and rates, its streak without a mismatch, both sides' latencies,
// the fields that differ most, the distinct problems and the noise; its
// exit status is 0 only when the candidate is ready, which makes it a
// gate for a deployment pipeline. It judges at the newest report's time,
// but never later than its own start by the clock of the machine it runs
// on: one client whose clock is ahead would otherwise move the window past
// every mismatch and stretch the streak to its clock, and make a run that
// is not ready look ready; a report with a later time is taken as made
// at that start, and said on standard error. --now judges at another
// time.
//
// Replay sends the recorded requests of the mismatched calls to a
// candidate again, compares its replies with the legacy replies the
// reports hold, and says per call which differences are fixed, which are
// still there and which are new: a fix verified without new traffic and
// without the legacy service. It compares replies as the run did when
// given the run's configuration file (--config): each method with its
// rule's diff options.
//
// # Reading reports
//
// Both commands read several files, merged by report time so that the
// files of several client instances read as one run, or standard input
// when no file or "-" is given. A line is at most 16 MiB, nests at most
// 100 levels deep (JSON objects and arrays, and messages), and the lists
// of its report (differences, noise, requests and legacy_replies) hold at
// most 10,000 elements together, far more than the interceptor writes. A
// line past these bounds, a line that is not JSON, or one that is not a
// report (no method, outcome or time), is malformed: it is reported on
// standard error with its file and line number, counted, and makes the
// exit status 1 unless --allow-malformed is given, since a gate must fail
// closed on evidence it could not read. The names of files are printed
// with their control characters escaped, as everything else read is.
//
// Memory holds one line and one decoded report per file, whatever the
// length of the input. A report decodes to about the size of its line
// plus 130 bytes per element of its lists (1.3 MiB at most), and takes at
// most about twice its line and 5 MiB more while it is decoded. Summary
// adds what the readiness tracker keeps (bounded per method, and in
// methods), replay the calls in flight and waiting to be printed (at most
// twice --concurrency). Replay also decodes the requests and replies into
// the service's types, which takes up to about a hundred times their JSON
// (a message for each element of a repeated message field): while a line
// is read, and for each call it holds. Time is linear in the input: Any
// values nested in each other make protojson read a line again at each
// level, at most 100 times.
//
// The requests and replies in a report are google.protobuf.Any values of
// the service's own message types, which this command does not link.
// Summary needs none and reads them all as an empty placeholder, whose
// contents are skipped. Replay looks their types up in the descriptors it
// is given (--proto-set, or the candidate's server reflection), and says
// which type it missed; protobuf's own types (google.protobuf.*) are the
// ones linked in the command, and a file that declares names in their
// package is refused, since a type of one of their names with other
// fields would stand in for them.
//
// A progress line is drawn on standard error while the input is read, when
// standard error is a terminal (--progress forces it, --progress=false
// turns it off).
//
// # Exit status
//
// 0 when the candidate is ready (summary) or every replayed call is fixed
// with nothing new (replay); 1 otherwise, or when a line was malformed; 2
// on a usage error or a file that cannot be read.
package main
