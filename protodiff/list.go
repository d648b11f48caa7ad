package protodiff

import "google.golang.org/protobuf/reflect/protoreflect"

// listKeyField returns the key field of a keyed list, or nil when the list
// cannot be keyed by name (not messages, or no such scalar field).
func listKeyField(fd protoreflect.FieldDescriptor, name protoreflect.Name) protoreflect.FieldDescriptor {
	md := fd.Message()
	if md == nil {
		return nil
	}
	k := md.Fields().ByName(name)
	if k == nil || k.IsList() || k.IsMap() || k.Message() != nil {
		return nil
	}
	return k
}

// sameByPosition reports whether two lists are equal element by element.
func (w *walker) sameByPosition(fd protoreflect.FieldDescriptor, lx, ly protoreflect.List, r *rule) bool {
	if lx.Len() != ly.Len() {
		return false
	}
	for i := 0; i < lx.Len(); i++ {
		if !w.equal(fd, lx.Get(i), ly.Get(i), r) {
			return false
		}
	}
	return true
}

// keyedList pairs the elements of two lists of messages by the value of
// their key field kfd and compares the pairs.
func (w *walker) keyedList(fd, kfd protoreflect.FieldDescriptor, lx, ly protoreflect.List, r *rule) {
	if w.sameByPosition(fd, lx, ly, r) {
		return
	}
	byKey := make(map[any][]int, ly.Len())
	for j := 0; j < ly.Len(); j++ {
		k := keyOf(kfd, ly.Get(j).Message().Get(kfd))
		byKey[k] = append(byKey[k], j)
	}
	usedY := make([]bool, ly.Len())
	for i := 0; i < lx.Len() && !w.stop(); i++ {
		ex := lx.Get(i)
		kv := ex.Message().Get(kfd)
		k := keyOf(kfd, kv)
		w.push(step{kind: stepListKey, fd: kfd, key: kv, rule: r})
		if js := byKey[k]; len(js) > 0 {
			byKey[k] = js[1:]
			usedY[js[0]] = true
			w.value(fd, ex, ly.Get(js[0]), r)
		} else {
			w.report(Removed, fd, ex, protoreflect.Value{}, r)
		}
		w.pop()
	}
	for j, used := range usedY {
		if used || w.stop() {
			continue
		}
		ey := ly.Get(j)
		w.push(step{kind: stepListKey, fd: kfd, key: ey.Message().Get(kfd), rule: r})
		w.report(Added, fd, protoreflect.Value{}, ey, r)
		w.pop()
	}
}

// keyOf turns a scalar value into a comparable map key.
func keyOf(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	if fd.Kind() == protoreflect.BytesKind {
		return string(v.Bytes())
	}
	return v.Interface()
}

// unorderedList compares two lists as multisets: greedy matching, trying
// the same position first, so mostly ordered lists cost little.
func (w *walker) unorderedList(fd protoreflect.FieldDescriptor, lx, ly protoreflect.List, r *rule) {
	if w.sameByPosition(fd, lx, ly, r) {
		return
	}
	nx, ny := lx.Len(), ly.Len()
	matchedX, usedY := make([]bool, nx), make([]bool, ny)
	for i := 0; i < nx; i++ {
		vx := lx.Get(i)
		if i < ny && !usedY[i] && w.equal(fd, vx, ly.Get(i), r) {
			matchedX[i], usedY[i] = true, true
			continue
		}
		for j := 0; j < ny; j++ {
			if !usedY[j] && w.equal(fd, vx, ly.Get(j), r) {
				matchedX[i], usedY[j] = true, true
				break
			}
		}
	}
	for i, ok := range matchedX {
		if ok || w.stop() {
			continue
		}
		w.push(step{kind: stepIndex, index: i, rule: r})
		w.report(Removed, fd, lx.Get(i), protoreflect.Value{}, r)
		w.pop()
	}
	for j, ok := range usedY {
		if ok || w.stop() {
			continue
		}
		w.push(step{kind: stepIndex, index: j, rule: r})
		w.report(Added, fd, protoreflect.Value{}, ly.Get(j), r)
		w.pop()
	}
}
