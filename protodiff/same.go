package protodiff

import (
	"reflect"
	"slices"
)

// SameOptions reports whether d and o were built with the same options:
// then they compare any two messages alike. A program that builds its
// Differs again from a configuration it reloads can tell with it whether
// what it learnt from earlier comparisons still holds.
//
// Options are compared as recorded, in order: the same paths given in
// another order are not the same options, though they compare alike. A
// resolver ([WithAnyResolver]) is the same only when it is the same
// pointer. The answer errs only towards "not the same".
func (d *Differ) SameOptions(o *Differ) bool {
	if d == nil || o == nil {
		return d == o
	}
	x, y := &d.opts, &o.opts
	return slices.Equal(x.ignorePaths, y.ignorePaths) &&
		slices.Equal(x.ignoreNames, y.ignoreNames) &&
		(x.tolerance == nil) == (y.tolerance == nil) &&
		(x.tolerance == nil || *x.tolerance == *y.tolerance) &&
		slices.Equal(x.pathTolerances, y.pathTolerances) &&
		slices.Equal(x.unordered, y.unordered) &&
		slices.Equal(x.listKeys, y.listKeys) &&
		slices.Equal(x.redactPaths, y.redactPaths) &&
		x.ignoreUnknown == y.ignoreUnknown &&
		x.rawAny == y.rawAny &&
		samePointer(x.resolver, y.resolver) &&
		x.maxDiffs == y.maxDiffs &&
		x.maxValueLen == y.maxValueLen &&
		x.maxDepth == y.maxDepth &&
		x.maxWork == y.maxWork
}

// samePointer says whether two resolvers are the same pointer. Other
// kinds of values are never the same: comparing them with == could panic
// on a value that holds a slice or a map.
func samePointer(a, b AnyResolver) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ta := reflect.TypeOf(a)
	if ta != reflect.TypeOf(b) || ta.Kind() != reflect.Pointer {
		return false
	}
	return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer()
}
