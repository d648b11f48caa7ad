package protodiff

import (
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

const anyName protoreflect.FullName = "google.protobuf.Any"

// any compares two google.protobuf.Any messages by their payloads: the same
// message encoded two ways is equal, and differences get paths inside the
// payload, such as `detail.(pricing.v1.Tier).level`. A payload that cannot
// be resolved or decoded is compared as bytes.
func (w *walker) any(mx, my protoreflect.Message, r *rule) {
	fields := mx.Descriptor().Fields()
	urlFD, valFD := fields.ByName("type_url"), fields.ByName("value")
	if urlFD == nil || valFD == nil {
		w.fields(mx, my, r)
		return
	}
	ux, uy := mx.Get(urlFD).String(), my.Get(urlFD).String()
	if ux != uy {
		w.typeChanged(anyTypeName(ux), anyTypeName(uy))
		return
	}
	mt, err := w.d.resolver.FindMessageByURL(ux)
	if err != nil {
		w.fields(mx, my, r)
		return
	}
	px, py := mt.New(), mt.New()
	uo := proto.UnmarshalOptions{AllowPartial: true}
	if uo.Unmarshal(mx.Get(valFD).Bytes(), px.Interface()) != nil ||
		uo.Unmarshal(my.Get(valFD).Bytes(), py.Interface()) != nil {
		w.fields(mx, my, r)
		return
	}
	name := mt.Descriptor().FullName()
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
	if !w.d.ignoreUnk && !w.stop() {
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
