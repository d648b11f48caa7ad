// Package examples holds the runnable demos of grpc-parallelrun: the
// pricing service with a legacy and a candidate implementation
// (examples/pricing), the quickstart that runs them (examples/quickstart),
// the candidate served alone for `parallelrun replay` (examples/candidate),
// the same traffic traced into Jaeger (examples/jaeger, a module of its
// own for its OTLP exporter), and a client configured from a JSON file
// that it reads again on SIGHUP (examples/reload). Its tests keep the
// README's Go snippets true to the testable examples they are taken from,
// its JSON configuration valid, and run its shell commands.
package examples
