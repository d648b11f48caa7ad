// Package examples holds the runnable demos of grpc-parallelrun: the
// pricing service with a legacy and a candidate implementation
// (examples/pricing), the quickstart that runs them (examples/quickstart),
// the candidate served alone for `parallelrun replay` (examples/candidate),
// and the same traffic traced into Jaeger (examples/jaeger, a module of its
// own for its OTLP exporter). Its test keeps the README's Go snippets true
// to the testable examples they are taken from.
package examples
