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
	g := &groups{nx: lx.Len()}
	for k, it := range all {
		if k == 0 || cmp.Compare(all[k-1].k, it.k) != 0 {
			g.start = append(g.start, k)
		}
		g.members = append(g.members, it.i)
	}
	g.start = append(g.start, len(all))
	value := func(member int) float64 {
		if member < g.nx {
			return lx.Get(member).Float()
		}
		return ly.Get(member - g.nx).Float()
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
	hs := make([]hashed, 0, nx+ny)
	for i := 0; i < nx; i++ {
		h1, h2 := w.hashMessage(lx.Get(i).Message(), r)
		hs = append(hs, hashed{h1, h2, i})
	}
	for j := 0; j < ny; j++ {
		h1, h2 := w.hashMessage(ly.Get(j).Message(), r)
		hs = append(hs, hashed{h1, h2, nx + j})
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
	elem := func(member int) protoreflect.Value {
		if member < nx {
			return lx.Get(member)
		}
		return ly.Get(member - nx)
	}
	// Classes of identical elements, inside runs of equal hashes: an
	// element joins the first class of its run whose representative it
	// equals with every tolerance off, or starts one.
	g := &groups{nx: nx}
	class := make([]int, len(hs))
	var bucketStart []int // first class of each bucket (run of equal h1)
	for lo := 0; lo < len(hs); {
		hi := lo + 1
		for hi < len(hs) && hs[hi].h1 == hs[lo].h1 {
			hi++
		}
		bucketStart = append(bucketStart, len(g.start))
		for a := lo; a < hi; {
			b := a + 1
			for b < hi && hs[b].h2 == hs[a].h2 {
				b++
			}
			first := len(g.start)
			// The smallest element of the run goes first and represents
			// the class the run usually is: comparing each element with
			// it then costs at most twice the element, however large the
			// others are (ignored fields still take a walk to skip).
			if b-a > 1 {
				small, size := a, -1
				for k := a; k < b; k++ {
					if s := proto.Size(elem(hs[k].m).Message().Interface()); size < 0 || s < size {
						small, size = k, s
					}
				}
				w.spend(b - a)
				hs[a], hs[small] = hs[small], hs[a]
				slices.SortFunc(hs[a+1:b], byMember)
			}
			for k := a; k < b; k++ {
				c := -1
				for cand := first; cand < len(g.start); cand++ {
					eq := w.equalExact(fd, elem(hs[k].m), elem(g.repOf[cand]), r)
					if w.stopped {
						return false
					}
					if eq {
						c = cand
						break
					}
				}
				if c < 0 {
					c = len(g.start)
					g.start = append(g.start, 0)
					g.repOf = append(g.repOf, hs[k].m)
				}
				class[k] = c
			}
			a = b
		}
		lo = hi
	}
	bucketStart = append(bucketStart, len(g.start))
	// Members of each class, contiguous and in member order: legacy
	// elements first, each side by index.
	classOf := make([]int, len(hs))
	counts := make([]int, len(g.start)+1)
	for k, c := range class {
		classOf[hs[k].m] = c
		counts[c+1]++
	}
	for c := 1; c < len(counts); c++ {
		counts[c] += counts[c-1]
	}
	copy(g.start, counts[:len(g.start)])
	g.start = append(g.start, len(hs))
	g.members = make([]int, len(hs))
	for m, c := range classOf {
		g.members[counts[c]] = m
		counts[c]++
	}
	for b := 0; b+1 < len(bucketStart); b++ {
		related := func(a, c int) bool {
			// Two classes are never identical, so proto.Equal could only
			// say "unequal": no pre-check.
			saved := w.credit
			w.credit = 0
			eq := w.equal(fd, elem(g.rep(a)), elem(g.rep(c)), r)
			w.credit = saved
			return eq
		}
		if !w.pairGroups(g, bucketStart[b], bucketStart[b+1], tolerant, related, pairedX, pairedY) {
			return false
		}
	}
	return true
}

// hashed is an element of an unordered list with its hashes.
type hashed struct {
	h1, h2 uint64
	m      int // member: legacy index, or nx + candidate index
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
