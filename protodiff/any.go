package protodiff

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

const anyName protoreflect.FullName = "google.protobuf.Any"

// anyFields returns the type_url and value fields of a google.protobuf.Any,
// or nils for a message that only has its name.
func anyFields(md protoreflect.MessageDescriptor) (url, value protoreflect.FieldDescriptor) {
	fields := md.Fields()
	url, value = fields.ByName("type_url"), fields.ByName("value")
	if url == nil || value == nil || url.Kind() != protoreflect.StringKind || value.Kind() != protoreflect.BytesKind ||
		url.IsList() || value.IsList() {
		return nil, nil
	}
	return url, value
}

// unpack decodes the payload of an Any (type URL url, bytes b) for a walk
// at the current depth: the payload is one level deeper. It returns
// errTooDeep when the payload nests past the maximum depth, another error
// when it cannot be resolved or decoded.
func (w *walker) unpack(url string, b []byte) (protoreflect.Message, error) {
	mt, err := w.d.resolver.FindMessageByURL(url)
	if err != nil {
		return nil, err
	}
	p := mt.New()
	n, err := decode(b, p, w.d.exts, w.d.maxDepth-w.depth)
	w.spend(n)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// any compares two google.protobuf.Any messages by their payloads: the same
// message encoded two ways is equal, and differences get paths inside the
// payload, such as `detail.(pricing.v1.Tier).level`. Payloads that cannot
// be resolved or decoded are compared as bytes (and rendered by size). The
// payloads are garbage once compared: nothing of them stays on the walker.
func (w *walker) any(mx, my protoreflect.Message, r *rule) {
	urlFD, valFD := anyFields(mx.Descriptor())
	if urlFD == nil {
		w.fields(mx, my, r)
		return
	}
	ux, uy := mx.Get(urlFD).String(), my.Get(urlFD).String()
	if ux != uy {
		w.typeChanged(anyTypeName(ux), anyTypeName(uy))
		return
	}
	px, err := w.unpack(ux, mx.Get(valFD).Bytes())
	var py protoreflect.Message
	if err == nil {
		py, err = w.unpack(uy, my.Get(valFD).Bytes())
	}
	switch {
	case err == errTooDeep:
		w.cutShort(mx, my, r, IncompleteMaxDepth)
		return
	case err != nil:
		w.fields(mx, my, r)
		return
	}
	name := px.Descriptor().FullName()
	var pr *rule
	if r != nil {
		pr = r.paren[name]
	}
	if pr == nil || !pr.ignore {
		saved := w.tol
		if pr != nil && pr.tol != nil {
			w.tol = pr.tol
		}
		w.push(step{kind: stepAny, name: name, rule: pr})
		w.message(px, py, pr)
		w.pop()
		w.tol = saved
	}
	if !w.d.ignoreUnk && !w.halt() {
		w.unknown(mx.GetUnknown(), my.GetUnknown(), r)
	}
}

// anyTypeName is the message name of a type URL, or the URL itself.
func anyTypeName(url string) string {
	if url == "" {
		return "<empty type URL>"
	}
	if i := strings.LastIndexByte(url, '/'); i >= 0 {
		return url[i+1:]
	}
	return url
}
