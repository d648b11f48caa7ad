package protodiff

import (
	"encoding/binary"
	"hash/maphash"
	"math"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// The elements of an unordered list of messages are put into buckets by a
// hash that any two elements equal under the options share: ignored fields
// are left out, unknown fields are hashed as they are compared (per field
// number), lists compared as multisets or by key and maps are combined in
// an order-independent way, an Any by its unpacked payload, NaN and the two
// zeros canonically. Each value gets two hashes: h1 leaves out the floats
// under a tolerance (equal floats may then differ), h2 keeps them, so that
// h2 only ever separates elements that are not identical.

// hashMix combines a tag and a hash into a well-spread hash; the inputs
// come from a seeded maphash, so collisions cannot be aimed at.
func hashMix(a, b uint64) uint64 {
	h := a ^ (b + 0x9e3779b97f4a7c15 + (a << 6) + (a >> 2))
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ (h >> 31)
}

func (w *walker) hashUint(v uint64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return maphash.Bytes(w.d.seed, b[:])
}

// hashFloat hashes a float so that the values scalarsEqual finds equal
// without a tolerance (NaN and NaN, +0 and -0) hash alike.
func (w *walker) hashFloat(f float64) uint64 {
	switch {
	case math.IsNaN(f):
		return w.hashUint(0x7ff8000000000001)
	case f == 0:
		return w.hashUint(0)
	}
	return w.hashUint(math.Float64bits(f))
}

// hashScalar hashes a set scalar (not a float).
func (w *walker) hashScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) uint64 {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if v.Bool() {
			return w.hashUint(1)
		}
		return w.hashUint(0)
	case protoreflect.EnumKind:
		return w.hashUint(uint64(v.Enum()))
	case protoreflect.StringKind:
		return maphash.String(w.d.seed, v.String())
	case protoreflect.BytesKind:
		return maphash.Bytes(w.d.seed, v.Bytes())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return w.hashUint(v.Uint())
	}
	return w.hashUint(uint64(v.Int()))
}

// hashMessage hashes a message of type md as the walk would compare it.
func (w *walker) hashMessage(m protoreflect.Message, md protoreflect.MessageDescriptor, r *rule) (h1, h2 uint64) {
	if w.depth >= w.d.maxDepth {
		// The walk will not go deeper either; a constant agrees for all.
		return 1, 1
	}
	w.depth++
	if w.d.resolver != nil && md.FullName() == anyName {
		h1, h2 = w.hashAny(m, r)
	} else {
		h1, h2 = w.hashFields(m, r)
	}
	w.depth--
	return h1, h2
}

func (w *walker) hashFields(m protoreflect.Message, r *rule) (h1, h2 uint64) {
	start := len(w.fv)
	m.Range(w.collect)
	end := len(w.fv)
	w.spend(end - start)
	for k := start; k < end; k++ {
		f := w.fv[k]
		fr, ignored := w.fieldRule(f.fd, r)
		if ignored {
			continue
		}
		saved := w.tol
		if fr != nil && fr.tol != nil {
			w.tol = fr.tol
		}
		a, b, loose := w.hashField(f.fd, f.v, fr)
		w.tol = saved
		// Fields combine by sum: no order to sort out.
		tag := uint64(f.fd.Number())
		if !loose {
			h1 += hashMix(tag, a)
		}
		h2 += hashMix(tag, b)
	}
	clear(w.fv[start:end])
	w.fv = w.fv[:start]
	if !w.d.ignoreUnk {
		u := w.hashUnknown(m.GetUnknown(), r)
		h1 += u
		h2 += u
	}
	return h1, h2
}

// hashField hashes the value of a populated field; loose says that h1 must
// leave it out, since a tolerance may make it equal to a missing one.
func (w *walker) hashField(fd protoreflect.FieldDescriptor, v protoreflect.Value, r *rule) (h1, h2 uint64, loose bool) {
	switch {
	case fd.IsList():
		h1, h2 = w.hashList(fd, v.List(), r)
		return h1, h2, false
	case fd.IsMap():
		h1, h2 = w.hashMap(fd, v.Map(), r)
		return h1, h2, false
	}
	return w.hashSingular(fd, v, r)
}

func (w *walker) hashSingular(fd protoreflect.FieldDescriptor, v protoreflect.Value, r *rule) (h1, h2 uint64, loose bool) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		h1, h2 = w.hashMessage(v.Message(), fd.Message(), r)
		return h1, h2, false
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		h := w.hashFloat(v.Float())
		if w.activeTol() != nil {
			return 0, h, true
		}
		return h, h, false
	}
	h := w.hashScalar(fd, v)
	return h, h, false
}

func (w *walker) hashList(fd protoreflect.FieldDescriptor, l protoreflect.List, r *rule) (h1, h2 uint64) {
	n := l.Len()
	w.spend(n)
	// As multisets: a list compared by key pairs equal elements too.
	sum := r != nil && (r.unordered || (r.key != "" && listKeyField(fd, r.key) != nil))
	h1 = w.hashUint(uint64(n))
	h2 = h1
	for i := 0; i < n; i++ {
		a, b, loose := w.hashSingular(fd, l.Get(i), r)
		if loose {
			a = 0
		}
		if sum {
			h1 += hashMix(0, a)
			h2 += hashMix(0, b)
		} else {
			h1 = hashMix(h1, a)
			h2 = hashMix(h2, b)
		}
	}
	return h1, h2
}

func (w *walker) hashMap(fd protoreflect.FieldDescriptor, mp protoreflect.Map, r *rule) (h1, h2 uint64) {
	kfd, vfd := fd.MapKey(), fd.MapValue()
	w.spend(mp.Len())
	mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		hk := w.hashScalar(kfd, k.Value())
		a, b, loose := w.hashSingular(vfd, v, r)
		if loose {
			a = 0
		}
		h1 += hashMix(hk, a)
		h2 += hashMix(hk, b)
		return true
	})
	return h1, h2
}

// hashUnknown hashes unknown fields per number, as they are compared.
func (w *walker) hashUnknown(raw protoreflect.RawFields, r *rule) uint64 {
	if len(raw) == 0 {
		return 0
	}
	w.spend(1 + len(raw)/64)
	var h uint64
	for num, b := range groupUnknown(raw) {
		if r != nil {
			if nr := r.numbers[num]; nr != nil && nr.ignore {
				continue
			}
		}
		h += hashMix(uint64(num)|1<<40, maphash.Bytes(w.d.seed, b))
	}
	return h
}

// hashAny hashes an Any by its payload, as any compares it.
func (w *walker) hashAny(m protoreflect.Message, r *rule) (h1, h2 uint64) {
	urlFD, valFD := anyFields(m.Descriptor())
	if urlFD == nil {
		return w.hashFields(m, r)
	}
	url := m.Get(urlFD).String()
	p, err := w.unpack(url, m.Get(valFD).Bytes())
	switch {
	case err == errTooDeep:
		return 1, 1
	case err != nil:
		return w.hashFields(m, r)
	}
	h := maphash.String(w.d.seed, url)
	h1, h2 = h, h
	name := p.Descriptor().FullName()
	var pr *rule
	if r != nil {
		pr = r.paren[name]
	}
	if pr == nil || !pr.ignore {
		saved := w.tol
		if pr != nil && pr.tol != nil {
			w.tol = pr.tol
		}
		a, b := w.hashMessage(p, p.Descriptor(), pr)
		w.tol = saved
		h1, h2 = hashMix(h, a), hashMix(h, b)
	}
	if !w.d.ignoreUnk {
		u := w.hashUnknown(m.GetUnknown(), r)
		h1 += u
		h2 += u
	}
	return h1, h2
}
