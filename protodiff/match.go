package protodiff

// groups partitions the elements of two lists into groups of identical
// elements. A member below nx is a legacy index, one from nx on a
// candidate index plus nx; the members of a group are contiguous, legacy
// ones first, each side in index order.
type groups struct {
	nx      int32
	start   []int32 // group c is members[start[c]:start[c+1]]
	members []int32
	repOf   []int32 // the member each group was compared with, if not its first
}

func (g *groups) count() int { return len(g.start) - 1 }

// rep is a representative of group c: all its members are identical, but
// the one chosen while grouping is the cheapest to compare.
func (g *groups) rep(c int) int {
	if g.repOf != nil {
		return int(g.repOf[c])
	}
	return int(g.members[g.start[c]])
}

// sides returns the legacy and candidate members of group c.
func (g *groups) sides(c int) (legacy, candidate []int32) {
	ms := g.members[g.start[c]:g.start[c+1]]
	k := 0
	for k < len(ms) && ms[k] < g.nx {
		k++
	}
	return ms[:k], ms[k:]
}

// pairGroups pairs the elements of groups lo to hi-1 (a bucket) and marks
// them. Without a tolerance, equality is an equivalence and a group's
// elements can only equal each other: they pair in index order. With one,
// identical elements may be better paired elsewhere (0 with 0.1 and -0.1
// with 0, margin 0.1), so a maximum flow between the groups decides, the
// groups being related when related says so. It returns false when the
// budget ran out.
func (w *walker) pairGroups(g *groups, lo, hi int, tolerant bool, related func(a, b int) bool, pairedX, pairedY []bool) bool {
	balanced := true
	for c := lo; c < hi; c++ {
		xs, ys := g.sides(c)
		balanced = balanced && len(xs) == len(ys)
	}
	if !tolerant || balanced {
		for c := lo; c < hi; c++ {
			xs, ys := g.sides(c)
			for k := 0; k < len(xs) && k < len(ys); k++ {
				pairedX[xs[k]], pairedY[ys[k]-g.nx] = true, true
			}
		}
		return true
	}
	// Nodes: source 0, sink 1, then one left node per group with legacy
	// members and one right node per group with candidate members.
	f := newFlow(2)
	left := map[int]int{}  // group -> node
	right := map[int]int{} // group -> node
	for c := lo; c < hi; c++ {
		xs, ys := g.sides(c)
		if len(xs) > 0 {
			left[c] = f.node()
			f.edge(0, left[c], len(xs))
		}
		if len(ys) > 0 {
			right[c] = f.node()
			f.edge(right[c], 1, len(ys))
		}
	}
	type link struct{ a, b, edge int }
	var links []link
	for a := lo; a < hi; a++ {
		la, ok := left[a]
		if !ok {
			continue
		}
		for b := lo; b < hi; b++ {
			rb, ok := right[b]
			if !ok {
				continue
			}
			w.spend(1)
			if a != b && !related(a, b) {
				if w.stopped {
					return false
				}
				continue
			}
			if w.stopped {
				return false
			}
			links = append(links, link{a, b, f.edge(la, rb, len(g.members))})
		}
	}
	if !f.maxFlow(0, 1, w) {
		return false
	}
	used := map[int][2]int{} // group -> legacy and candidate members used
	for _, l := range links {
		n := f.flowOn(l.edge)
		ua, ub := used[l.a], used[l.b]
		xs, _ := g.sides(l.a)
		_, ys := g.sides(l.b)
		for k := 0; k < n; k++ {
			pairedX[xs[ua[0]+k]], pairedY[ys[ub[1]+k]-g.nx] = true, true
		}
		ua[0] += n
		used[l.a] = ua
		ub = used[l.b] // l.a may be l.b
		ub[1] += n
		used[l.b] = ub
	}
	return true
}

// flow is a flow network for Dinic's maximum flow algorithm, with edges in
// pairs (forward at an even index, its residual at the next odd one).
type flow struct {
	head  []int // per node, first edge or -1
	next  []int // per edge
	to    []int
	cap   []int
	orig  []int // capacities as built
	level []int
	iter  []int
	path  []int // edges of the path being explored
}

func newFlow(nodes int) *flow {
	f := &flow{}
	for range nodes {
		f.node()
	}
	return f
}

func (f *flow) node() int {
	f.head = append(f.head, -1)
	return len(f.head) - 1
}

func (f *flow) edge(u, v, c int) int {
	e := len(f.to)
	f.to = append(f.to, v, u)
	f.cap = append(f.cap, c, 0)
	f.orig = append(f.orig, c, 0)
	f.next = append(f.next, f.head[u], f.head[v])
	f.head[u], f.head[v] = e, e+1
	return e
}

func (f *flow) flowOn(e int) int { return f.orig[e] - f.cap[e] }

// maxFlow pushes a maximum flow from s to t; every edge looked at costs one
// unit of work, and it returns false when the budget ran out.
func (f *flow) maxFlow(s, t int, w *walker) bool {
	n := len(f.head)
	f.level = make([]int, n)
	f.iter = make([]int, n)
	queue := make([]int, 0, n)
	for {
		// Levels, breadth first, over edges with capacity left.
		for i := range f.level {
			f.level[i] = -1
		}
		f.level[s] = 0
		queue = append(queue[:0], s)
		for q := 0; q < len(queue); q++ {
			u := queue[q]
			for e := f.head[u]; e >= 0; e = f.next[e] {
				w.spend(1)
				if v := f.to[e]; f.cap[e] > 0 && f.level[v] < 0 {
					f.level[v] = f.level[u] + 1
					queue = append(queue, v)
				}
			}
			if w.stopped {
				return false
			}
		}
		if f.level[t] < 0 {
			return true
		}
		copy(f.iter, f.head)
		for pushed := 1; pushed > 0; {
			pushed = f.augment(s, t, w)
		}
		if w.stopped {
			return false
		}
	}
}

// augment finds one path from s to t along increasing levels and pushes its
// bottleneck through it; dead ends are cut off for the rest of the phase.
// It keeps its own stack, so no input can make it recurse deeply.
func (f *flow) augment(s, t int, w *walker) int {
	f.path = f.path[:0]
	u := s
	for !w.stopped {
		if u == t {
			b := f.cap[f.path[0]]
			for _, e := range f.path {
				b = min(b, f.cap[e])
			}
			for _, e := range f.path {
				f.cap[e] -= b
				f.cap[e^1] += b
			}
			return b
		}
		advanced := false
		for ; f.iter[u] >= 0; f.iter[u] = f.next[f.iter[u]] {
			e := f.iter[u]
			w.spend(1)
			if v := f.to[e]; f.cap[e] > 0 && f.level[v] == f.level[u]+1 {
				f.path = append(f.path, e)
				u = v
				advanced = true
				break
			}
		}
		if advanced {
			continue
		}
		if u == s {
			return 0
		}
		f.level[u] = -1
		e := f.path[len(f.path)-1]
		f.path = f.path[:len(f.path)-1]
		u = f.to[e^1]
		f.iter[u] = f.next[f.iter[u]]
	}
	return 0
}
