package interceptor

import "google.golang.org/grpc"

// CallOption is a per-call option of the parallel run. It embeds
// grpc.EmptyCallOption, and the interceptor removes it before the call goes
// on, so neither the legacy nor the candidate connection sees it.
type CallOption struct {
	grpc.EmptyCallOption
	mode callMode
}

type callMode uint8

const (
	modeDefault callMode = iota
	modeSkip
	modeForce
	// modeProbe marks the parallel run's own noise probe through the
	// legacy connection: it passes, neither mirrored nor counted.
	modeProbe
)

// Skip keeps this call from being mirrored, whatever the configuration.
func Skip() CallOption { return CallOption{mode: modeSkip} }

// Force mirrors this call even if its method is not configured (then with
// default comparison options) or sampled out. It never mirrors a method
// configured Disabled, which is how writes are kept from being duplicated;
// and Skip wins over Force.
func Force() CallOption { return CallOption{mode: modeForce} }

// takeCallOptions returns the mode the call options ask for and the
// options without ours. It allocates only when one of ours is present,
// which keeps the common path free.
func takeCallOptions(opts []grpc.CallOption) (callMode, []grpc.CallOption) {
	mode, found := modeDefault, false
	for _, o := range opts {
		if c, ok := o.(CallOption); ok {
			found = true
			if c.mode == modeSkip || c.mode == modeProbe || mode == modeDefault {
				mode = c.mode
			}
		}
	}
	if !found {
		return mode, opts
	}
	rest := make([]grpc.CallOption, 0, len(opts)-1)
	for _, o := range opts {
		if _, ok := o.(CallOption); !ok {
			rest = append(rest, o)
		}
	}
	return mode, rest
}

// candidateCallOptions drops the options that belong to the caller's call
// alone: those that write through the caller's pointers (Header, Trailer,
// Peer), must run once (OnFinish), or carry the legacy target's identity
// (per-RPC credentials, authority). WaitForReady goes too: a candidate that
// is down would hold each call's place in flight, and its share of the
// memory budget, until the candidate's deadline instead of failing at once.
func candidateCallOptions(opts []grpc.CallOption) []grpc.CallOption {
	out := make([]grpc.CallOption, 0, len(opts))
	for _, o := range opts {
		switch o.(type) {
		case grpc.HeaderCallOption, *grpc.HeaderCallOption,
			grpc.TrailerCallOption, *grpc.TrailerCallOption,
			grpc.PeerCallOption, *grpc.PeerCallOption,
			grpc.OnFinishCallOption, *grpc.OnFinishCallOption,
			grpc.PerRPCCredsCallOption, *grpc.PerRPCCredsCallOption,
			grpc.AuthorityOverrideCallOption, *grpc.AuthorityOverrideCallOption,
			grpc.FailFastCallOption, *grpc.FailFastCallOption,
			CallOption:
			continue
		}
		out = append(out, o)
	}
	return out
}
