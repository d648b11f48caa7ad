package protodiff

import (
	"math"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// listKeyField returns the key field of a keyed list, or nil when the list
// cannot be keyed by name (not messages, or no such scalar field).
func listKeyField(fd protoreflect.FieldDescriptor, name protoreflect.Name) protoreflect.FieldDescriptor {
	md := fd.Message()
	if md == nil || fd.IsMap() {
		return nil
	}
	k := md.Fields().ByName(name)
	if k == nil || k.IsList() || k.IsMap() || k.Message() != nil {
		return nil
	}
	return k
}

// keyedList pairs the elements of two lists of messages by the value of
// their key field kfd, the n-th element with a key on one side with the
// n-th with that key on the other, and compares the pairs.
func (w *walker) keyedList(fd, kfd protoreflect.FieldDescriptor, lx, ly protoreflect.List, r *rule) {
	nx, ny := lx.Len(), ly.Len()
	if w.spend(nx + ny); w.stopped {
		w.listCutShort(fd, lx, ly, r)
		return
	}
	rx, ry := &keyRanks{kfd: kfd, list: lx}, &keyRanks{kfd: kfd, list: ly}
	if nx == ny && sameKeys(kfd, lx, ly) {
		// The usual case, and the n-th of a key is then at the same
		// position on both sides: no index to build.
		for i := 0; i < nx && !w.halt(); i++ {
			ex := lx.Get(i)
			w.push(step{kind: stepListKey, fd: kfd, key: ex.Message().Get(kfd), index: i, ranks: rx, rule: r})
			w.value(fd, ex, ly.Get(i), r)
			w.pop()
		}
		return
	}
	// For each key, the candidate positions that hold it, in order: head
	// is the first not yet paired, next links the others.
	head := make(map[any]int, ny)
	next := make([]int, ny)
	for j := ny - 1; j >= 0; j-- {
		k := keyOf(kfd, ly.Get(j).Message().Get(kfd))
		if h, ok := head[k]; ok {
			next[j] = h
		} else {
			next[j] = -1
		}
		head[k] = j
	}
	paired := make([]bool, ny)
	for i := 0; i < nx && !w.halt(); i++ {
		ex := lx.Get(i)
		kv := ex.Message().Get(kfd)
		k := keyOf(kfd, kv)
		w.push(step{kind: stepListKey, fd: kfd, key: kv, index: i, ranks: rx, rule: r})
		if j, ok := head[k]; ok && j >= 0 {
			head[k] = next[j]
			paired[j] = true
			w.value(fd, ex, ly.Get(j), r)
		} else {
			w.report(Removed, fd, ex, protoreflect.Value{}, r)
		}
		w.pop()
	}
	for j, ok := range paired {
		if ok || w.halt() {
			continue
		}
		ey := ly.Get(j)
		w.push(step{kind: stepListKey, fd: kfd, key: ey.Message().Get(kfd), index: j, ranks: ry, rule: r})
		w.report(Added, fd, protoreflect.Value{}, ey, r)
		w.pop()
	}
}

// sameKeys reports whether two lists hold the same keys in the same order.
func sameKeys(kfd protoreflect.FieldDescriptor, lx, ly protoreflect.List) bool {
	for i := 0; i < lx.Len(); i++ {
		if !scalarsEqual(kfd, lx.Get(i).Message().Get(kfd), ly.Get(i).Message().Get(kfd), nil) {
			return false
		}
	}
	return true
}

// nanKey stands for every NaN key, which Go maps would keep apart.
type nanKey struct{}

// keyOf turns a scalar value into a comparable map key; keys equal as
// values (NaN and NaN, +0 and -0, bytes by content) are equal.
func keyOf(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.BytesKind:
		return string(v.Bytes())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f := v.Float()
		if math.IsNaN(f) {
			return nanKey{}
		}
		return f + 0 // -0 + 0 is +0
	}
	return v.Interface()
}

// keyRanks gives the elements of a keyed list their rank among the
// elements with the same key, from 1: the n of a path `[sku="A1"#n]`.
// Ranks are counted once, and only when a path is rendered, up to the
// element it needs: rendering many paths in a long list stays linear.
type keyRanks struct {
	kfd    protoreflect.FieldDescriptor
	list   protoreflect.List
	counts map[any]int
	ranks  []int
}

func (k *keyRanks) rank(i int) int {
	if k.counts == nil {
		k.counts = make(map[any]int)
	}
	for j := len(k.ranks); j <= i; j++ {
		key := keyOf(k.kfd, k.list.Get(j).Message().Get(k.kfd))
		k.counts[key]++
		k.ranks = append(k.ranks, k.counts[key])
	}
	return k.ranks[i]
}
