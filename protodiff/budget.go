package protodiff

import "google.golang.org/protobuf/reflect/protoreflect"

// The budget of a comparison: a depth past which messages are not walked,
// and an amount of work past which nothing is. Where the walk does not go,
// proto.Equal decides, which is linear and never wrong towards "equal":
// every option only makes more messages equal, so proto.Equal's "equal" is
// final, and its "unequal" becomes a difference at the path where the walk
// stopped (one that the options might have excused, which
// Result.Incomplete tells).

// spend charges n units of work; once the budget is spent the walk goes on
// without detail, comparing what is left with proto.Equal.
func (w *walker) spend(n int) {
	w.work -= n
	if w.work < 0 && !w.stopped {
		w.stopped = true
		w.setIncomplete(IncompleteMaxWork)
	}
}

// setIncomplete records the first limit that cut the walk short.
func (w *walker) setIncomplete(reason string) {
	if w.incomplete == "" {
		w.incomplete = reason
	}
}

// cutShort lets proto.Equal decide for two messages that a limit keeps the
// walk out of.
func (w *walker) cutShort(mx, my protoreflect.Message, r *rule, reason string) {
	w.setIncomplete(reason)
	if equalChecked(mx, my) {
		return
	}
	w.report(Changed, nil, protoreflect.ValueOfMessage(mx), protoreflect.ValueOfMessage(my), r)
}

// listCutShort is cutShort for a whole list that the budget keeps from
// being matched by key or as a multiset: proto.Equal's rule is by position.
func (w *walker) listCutShort(fd protoreflect.FieldDescriptor, lx, ly protoreflect.List, r *rule) {
	w.setIncomplete(IncompleteMaxWork)
	if listsIdentical(fd, lx, ly) {
		return
	}
	w.report(Changed, fd, protoreflect.ValueOfList(lx), protoreflect.ValueOfList(ly), r)
}

// listsIdentical is proto.Equal for two lists.
func listsIdentical(fd protoreflect.FieldDescriptor, lx, ly protoreflect.List) bool {
	n := lx.Len()
	if n != ly.Len() {
		return false
	}
	isMsg := fd.Message() != nil
	for i := 0; i < n; i++ {
		vx, vy := lx.Get(i), ly.Get(i)
		if isMsg {
			if !equalChecked(vx.Message(), vy.Message()) {
				return false
			}
		} else if !scalarsEqual(fd, vx, vy, nil) {
			return false
		}
	}
	return true
}
