package protodiff

import (
	"bytes"
	"cmp"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// unorderedList compares two lists as multisets. It finds a maximum pairing
// of equal elements, pairs equal elements in index order, and reports each
// element left over: Removed with its legacy index, then Added with its
// candidate index.
func (w *walker) unorderedList(fd protoreflect.FieldDescriptor, lx, ly protoreflect.List, r *rule) {
	nx, ny := lx.Len(), ly.Len()
	if w.spend(nx + ny); w.stopped {
		w.listCutShort(fd, lx, ly, r)
		return
	}
	if nx == ny && w.samePositions(fd, lx, ly, r) {
		return
	}
	pairedX, pairedY := make([]bool, nx), make([]bool, ny)
	if nx > 0 && ny > 0 {
		var ok bool
		if fd.Message() != nil {
			ok = w.pairMessages(fd, lx, ly, r, pairedX, pairedY)
		} else {
			ok = w.pairScalars(fd, lx, ly, pairedX, pairedY)
		}
		if !ok {
			// The budget ran out while pairing.
			w.listCutShort(fd, lx, ly, r)
			return
		}
	}
	for i, ok := range pairedX {
		if ok || w.halt() {
			continue
		}
		w.push(step{kind: stepIndex, index: i, rule: r})
		w.report(Removed, fd, lx.Get(i), protoreflect.Value{}, r)
		w.pop()
	}
	for j, ok := range pairedY {
		if ok || w.halt() {
			continue
		}
		w.push(step{kind: stepIndex, index: j, rule: r})
		w.report(Added, fd, protoreflect.Value{}, ly.Get(j), r)
		w.pop()
	}
}

// samePositions reports whether two lists are equal position by position,
// which makes them equal as multisets: the usual case, found in one pass.
// Messages are only asked proto.Equal, while the path has credit.
func (w *walker) samePositions(fd protoreflect.FieldDescriptor, lx, ly protoreflect.List, r *rule) bool {
	if fd.Message() != nil {
		if w.credit == 0 {
			return false
		}
		for i := 0; i < lx.Len(); i++ {
			if !equalChecked(lx.Get(i).Message(), ly.Get(i).Message()) {
				return false
			}
		}
		return true
	}
	for i := 0; i < lx.Len(); i++ {
		if !w.scalarEqual(fd, lx.Get(i), ly.Get(i)) {
			return false
		}
	}
	return true
}

// item is one list element with its sort key.
type item[K any] struct {
	k K
	i int
}

func items[K any](l protoreflect.List, key func(protoreflect.Value) K) []item[K] {
	out := make([]item[K], l.Len())
	for i := range out {
		out[i] = item[K]{key(l.Get(i)), i}
	}
	return out
}

// sortItems sorts by key, then by index, so that equal elements pair up in
// index order.
func sortItems[K any](s []item[K], compare func(a, b K) int) {
	slices.SortFunc(s, func(a, b item[K]) int {
		if c := compare(a.k, b.k); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
}

// pairSorted pairs the equal keys of two sorted lists of items.
func pairSorted[K any](xs, ys []item[K], compare func(a, b K) int, pairedX, pairedY []bool) {
	for i, j := 0, 0; i < len(xs) && j < len(ys); {
		switch c := compare(xs[i].k, ys[j].k); {
		case c == 0:
			pairedX[xs[i].i], pairedY[ys[j].i] = true, true
			i++
			j++
		case c < 0:
			i++
		default:
			j++
		}
	}
}

// pairExact pairs the scalars of two lists by sorting: O(n log n).
func pairExact[K any](lx, ly protoreflect.List, key func(protoreflect.Value) K, compare func(a, b K) int, pairedX, pairedY []bool) {
	xs, ys := items(lx, key), items(ly, key)
	sortItems(xs, compare)
	sortItems(ys, compare)
	pairSorted(xs, ys, compare, pairedX, pairedY)
}

func floatKey(v protoreflect.Value) float64 { return v.Float() }
func intKey(v protoreflect.Value) int64     { return v.Int() }
func uintKey(v protoreflect.Value) uint64   { return v.Uint() }
func stringKey(v protoreflect.Value) string { return v.String() }
func bytesKey(v protoreflect.Value) []byte  { return v.Bytes() }
func enumKey(v protoreflect.Value) int64    { return int64(v.Enum()) }
func boolKey(v protoreflect.Value) int64 {
	if v.Bool() {
		return 1
	}
	return 0
}

// pairScalars pairs two lists of scalars. cmp.Compare on floats has
// protodiff's rules: NaN equals NaN, +0 equals -0.
func (w *walker) pairScalars(fd protoreflect.FieldDescriptor, lx, ly protoreflect.List, pairedX, pairedY []bool) bool {
	switch fd.Kind() {
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		if t := w.activeTol(); t != nil {
			if t.fraction <= 1 {
				w.pairFloatsSweep(lx, ly, t, pairedX, pairedY)
				return true
			}
			return w.pairFloatsGeneral(lx, ly, t, pairedX, pairedY)
		}
		pairExact(lx, ly, floatKey, cmp.Compare[float64], pairedX, pairedY)
	case protoreflect.StringKind:
		pairExact(lx, ly, stringKey, strings.Compare, pairedX, pairedY)
	case protoreflect.BytesKind:
		pairExact(lx, ly, bytesKey, bytes.Compare, pairedX, pairedY)
	case protoreflect.BoolKind:
		pairExact(lx, ly, boolKey, cmp.Compare[int64], pairedX, pairedY)
	case protoreflect.EnumKind:
		pairExact(lx, ly, enumKey, cmp.Compare[int64], pairedX, pairedY)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		pairExact(lx, ly, uintKey, cmp.Compare[uint64], pairedX, pairedY)
	default:
		pairExact(lx, ly, intKey, cmp.Compare[int64], pairedX, pairedY)
	}
	return true
}

// floatsRelated is equality of two list floats under tolerance t.
func floatsRelated(x, y float64, t *tolerance) bool {
	return cmp.Compare(x, y) == 0 || t.close(x, y)
}

// pairFloatsSweep finds a maximum pairing of floats under a tolerance with
// fraction <= 1 in one sweep after sorting. The values within tolerance of
// x then form an interval [lo(x), hi(x)] of the sorted values, lo and hi
// never decreasing as x grows (NaN, sorted first, and the infinities
// relate only to themselves; with fraction <= 1, values of opposite signs
// are only related through the margin). For such intervals, taking each x
// in order and pairing it with the smallest free y in its interval is
// optimal, and the free ys below lo(x) can never pair again. The interval
// property holds for the computed predicate too, since rounding is
// monotonic: see floatsRelated and tolerance.close.
func (w *walker) pairFloatsSweep(lx, ly protoreflect.List, t *tolerance, pairedX, pairedY []bool) {
	xs, ys := items(lx, floatKey), items(ly, floatKey)
	sortItems(xs, cmp.Compare[float64])
	sortItems(ys, cmp.Compare[float64])
	w.spend(len(xs) + len(ys))
	j := 0
	for _, x := range xs {
		for j < len(ys) && cmp.Compare(ys[j].k, x.k) < 0 && !floatsRelated(x.k, ys[j].k, t) {
			j++
		}
		if j < len(ys) && floatsRelated(x.k, ys[j].k, t) {
			pairedX[x.i], pairedY[ys[j].i] = true, true
			j++
		}
	}
}

// pairFloatsGeneral pairs floats under a tolerance with fraction > 1, where
// values of opposite signs may be related and the interval property fails:
// equal values are grouped and a maximum flow pairs the groups.
func (w *walker) pairFloatsGeneral(lx, ly protoreflect.List, t *tolerance, pairedX, pairedY []bool) bool {
	all := make([]item[float64], 0, lx.Len()+ly.Len())
	all = append(all, items(lx, floatKey)...)
	for _, y := range items(ly, floatKey) {
		y.i += lx.Len() // candidates after legacy elements
		all = append(all, y)
	}
	sortItems(all, cmp.Compare[float64])
	g := &groups{nx: int32(lx.Len())}
	for k, it := range all {
		if k == 0 || cmp.Compare(all[k-1].k, it.k) != 0 {
			g.start = append(g.start, int32(k))
		}
		g.members = append(g.members, int32(it.i))
	}
	g.start = append(g.start, int32(len(all)))
	value := func(member int) float64 {
		if member < lx.Len() {
			return lx.Get(member).Float()
		}
		return ly.Get(member - lx.Len()).Float()
	}
	return w.pairGroups(g, 0, g.count(), true, func(a, b int) bool {
		return floatsRelated(value(g.rep(a)), value(g.rep(b)), t)
	}, pairedX, pairedY)
}

// pairMessages pairs two lists of messages: elements are hashed into
// buckets, grouped inside a bucket into classes of identical elements (one
// comparison with a representative each), and the classes of a bucket are
// paired: a class with itself when equality is an equivalence (no
// tolerance in force), by a maximum flow between classes otherwise.
func (w *walker) pairMessages(fd protoreflect.FieldDescriptor, lx, ly protoreflect.List, r *rule, pairedX, pairedY []bool) bool {
	nx, ny := lx.Len(), ly.Len()
	tolerant := !w.exact && (w.activeTol() != nil || (r != nil && r.tolBelow))
	// The elements, got once and in order: List.Get goes through
	// reflection, and the rest reaches them in hash order.
	elems := make([]protoreflect.Message, 0, nx+ny)
	for i := 0; i < nx; i++ {
		elems = append(elems, lx.Get(i).Message())
	}
	for j := 0; j < ny; j++ {
		elems = append(elems, ly.Get(j).Message())
	}
	hs := make([]hashed, len(elems))
	md := fd.Message()
	for m, e := range elems {
		h1, h2 := w.hashMessage(e, md, r)
		hs[m] = hashed{h1, h2, int32(m)}
	}
	if w.stopped {
		return false
	}
	slices.SortFunc(hs, func(a, b hashed) int {
		if c := cmp.Compare(a.h1, b.h1); c != 0 {
			return c
		}
		if c := cmp.Compare(a.h2, b.h2); c != 0 {
			return c
		}
		return byMember(a, b)
	})
	g, bucketStart, ok := w.classify(fd, nx, elems, hs, r)
	if !ok {
		return false
	}
	related := func(a, c int) bool {
		// Two classes are never identical, so proto.Equal could only say
		// "unequal": no pre-check.
		saved := w.credit
		w.credit = 0
		eq := w.equal(fd, protoreflect.ValueOfMessage(elems[g.rep(a)]), protoreflect.ValueOfMessage(elems[g.rep(c)]), r)
		w.credit = saved
		return eq
	}
	for b := 0; b+1 < len(bucketStart); b++ {
		if !w.pairGroups(g, bucketStart[b], bucketStart[b+1], tolerant, related, pairedX, pairedY) {
			return false
		}
	}
	return true
}

// classify groups the elements of two lists, sorted by hash in hs, into
// classes of identical elements: an element joins the first class of its
// run of equal hashes whose representative it equals with every tolerance
// off, or starts one. Elements are taken in index order, so that only the
// representative is reached out of order (memory order matters at 100,000
// elements). The classes of a bucket (a run of equal h1) are numbered
// contiguously: bucket b holds classes bucketStart[b] to bucketStart[b+1]-1.
func (w *walker) classify(fd protoreflect.FieldDescriptor, nx int, elems []protoreflect.Message, hs []hashed, r *rule) (g *groups, bucketStart []int, ok bool) {
	// Indexes are int32, and arrays few: at 100,000 elements each array of
	// ints costs 1.6 MB, and the garbage collector sees it all.
	n := len(hs)
	runOf := make([]int32, n)       // member -> run of equal (h1, h2)
	runs := make([]int32, 0, n/2+1) // run -> its first position in hs
	for k := range hs {
		if k == 0 || hs[k].h1 != hs[k-1].h1 || hs[k].h2 != hs[k-1].h2 {
			runs = append(runs, int32(k))
		}
		runOf[hs[k].m] = int32(len(runs) - 1)
	}
	runs = append(runs, int32(n))
	// Classes, found in index order: each run lists its classes, from
	// head to tail through next.
	head, tail := make([]int32, len(runs)-1), make([]int32, len(runs)-1)
	for i := range head {
		head[i], tail[i] = -1, -1
	}
	// Usually a class per run.
	rep, next := make([]int32, 0, len(runs)), make([]int32, 0, len(runs))
	class := make([]int32, n) // member -> class; -1 until known
	for m := range class {
		class[m] = -1
	}
	newClass := func(run, member int32) int32 {
		c := int32(len(rep))
		rep, next = append(rep, member), append(next, -1)
		if tail[run] < 0 {
			head[run] = c
		} else {
			next[tail[run]] = c
		}
		tail[run] = c
		class[member] = c
		return c
	}
	for run := int32(0); int(run)+1 < len(runs); run++ {
		// The smallest element of a run represents the class the run
		// usually is, so that comparing each element with it costs at
		// most twice the element, however large the others are (ignored
		// fields still take a walk to skip). A pair takes one comparison
		// either way.
		if a, b := runs[run], runs[run+1]; b-a > 2 {
			small, size := int32(-1), -1
			for k := a; k < b; k++ {
				if s := proto.Size(elems[hs[k].m].Interface()); size < 0 || s < size || (s == size && hs[k].m < small) {
					small, size = hs[k].m, s
				}
			}
			w.spend(int(b - a))
			newClass(run, small)
		}
	}
	for m := range class {
		if class[m] >= 0 {
			continue
		}
		run := runOf[m]
		c := int32(-1)
		for cand := head[run]; cand >= 0; cand = next[cand] {
			eq := w.equalExact(fd, protoreflect.ValueOfMessage(elems[m]), protoreflect.ValueOfMessage(elems[rep[cand]]), r)
			if w.stopped {
				return nil, nil, false
			}
			if eq {
				c = cand
				break
			}
		}
		if c < 0 {
			c = newClass(run, int32(m))
		}
		class[m] = c
	}
	// Number the classes in hash order, so that a bucket's are contiguous
	// (next, no longer needed, holds the new numbers), and list their
	// members in index order: legacy first, each side by index.
	renum := next
	for c := range renum {
		renum[c] = -1
	}
	g = &groups{nx: int32(nx), repOf: make([]int32, 0, len(rep))}
	bucketStart = make([]int, 0, len(runs))
	for k := range hs {
		if k == 0 || hs[k].h1 != hs[k-1].h1 {
			bucketStart = append(bucketStart, len(g.repOf))
		}
		if c := class[hs[k].m]; renum[c] < 0 {
			renum[c] = int32(len(g.repOf))
			g.repOf = append(g.repOf, rep[c])
		}
	}
	bucketStart = append(bucketStart, len(g.repOf))
	counts := make([]int32, len(g.repOf)+1)
	for m := range class {
		class[m] = renum[class[m]]
		counts[class[m]+1]++
	}
	for c := 1; c < len(counts); c++ {
		counts[c] += counts[c-1]
	}
	g.start = append(counts[:len(g.repOf):len(g.repOf)], int32(n))
	g.members = runOf // no longer needed: reused
	for m, c := range class {
		g.members[counts[c]] = int32(m)
		counts[c]++
	}
	return g, bucketStart, true
}

// hashed is an element of an unordered list with its hashes.
type hashed struct {
	h1, h2 uint64
	m      int32 // member: legacy index, or nx + candidate index
}

func byMember(a, b hashed) int { return cmp.Compare(a.m, b.m) }

// equalExact answers whether two values are identical under the options,
// every tolerance off.
func (w *walker) equalExact(fd protoreflect.FieldDescriptor, vx, vy protoreflect.Value, r *rule) bool {
	saved := w.exact
	w.exact = true
	eq := w.equal(fd, vx, vy, r)
	w.exact = saved
	return eq
}
