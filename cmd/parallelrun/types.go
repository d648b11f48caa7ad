package main

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// descriptorSource finds, on demand, the file that defines a symbol (a
// message or a service) and the files it imports that have is false for.
// The candidate's server reflection is one.
type descriptorSource interface {
	fileContaining(symbol string, have func(path string) bool) ([]*descriptorpb.FileDescriptorProto, error)
	describe() string // for errors: "the candidate's server reflection"
}

// maxSourceMisses bounds the symbols a source is asked for in vain: the
// failures are remembered, so that a hostile input naming a million types
// costs at most this many round trips.
const maxSourceMisses = 256

// registry holds the user's message types, built as dynamicpb types from
// descriptors the user gave (a descriptor set) or fetched from a source
// as reports name them. It is safe for concurrent use: the reading
// goroutine may load files while workers resolve Any payloads.
type registry struct {
	mu     sync.RWMutex
	files  *protoregistry.Files
	types  *dynamicpb.Types
	src    descriptorSource // nil: only the files given
	misses map[string]error // symbols src could not give, and why
	origin string           // where the files come from, for errors
}

func newRegistry(src descriptorSource, origin string) *registry {
	files := new(protoregistry.Files)
	return &registry{files: files, types: dynamicpb.NewTypes(files), src: src, misses: map[string]error{}, origin: origin}
}

var _ interface {
	protoregistry.MessageTypeResolver
	protoregistry.ExtensionTypeResolver
} = (*registry)(nil)

// FindMessageByName finds a message type in the files, asking the source
// for it if it is not there yet. Protobuf's own types are the linked ones,
// whatever the files say.
func (r *registry) FindMessageByName(name protoreflect.FullName) (protoreflect.MessageType, error) {
	if isWellKnown(string(name)) {
		return wellKnownType(name)
	}
	find := func() (protoreflect.MessageType, error) {
		r.mu.RLock()
		defer r.mu.RUnlock()
		return r.types.FindMessageByName(name)
	}
	mt, err := find()
	if err == nil {
		return mt, nil
	}
	if errors.Is(err, protoregistry.NotFound) {
		if lerr := r.load(string(name)); lerr != nil {
			return nil, lerr
		}
		return find()
	}
	return nil, err
}

// FindMessageByURL finds the type of a type URL: the part after its last
// slash is the message's full name.
func (r *registry) FindMessageByURL(url string) (protoreflect.MessageType, error) {
	name := protoreflect.FullName(url[strings.LastIndexByte(url, '/')+1:])
	if !name.IsValid() {
		return nil, fmt.Errorf("type URL %q does not end with a message name: %w", url, protoregistry.NotFound)
	}
	return r.FindMessageByName(name)
}

// FindExtensionByName and FindExtensionByNumber find extensions among the
// files already loaded: an extension is never the reason to load one.
func (r *registry) FindExtensionByName(name protoreflect.FullName) (protoreflect.ExtensionType, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.types.FindExtensionByName(name)
}

func (r *registry) FindExtensionByNumber(message protoreflect.FullName, field protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.types.FindExtensionByNumber(message, field)
}

// findMethod finds a method by its name in a report ("pkg.Service/Method",
// or with a leading slash).
func (r *registry) findMethod(method string) (protoreflect.MethodDescriptor, error) {
	svc, name, ok := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if !ok || !protoreflect.FullName(svc).IsValid() || !protoreflect.Name(name).IsValid() {
		return nil, fmt.Errorf("method %q is not of the form pkg.Service/Method", method)
	}
	find := func() (protoreflect.Descriptor, error) {
		r.mu.RLock()
		defer r.mu.RUnlock()
		return r.files.FindDescriptorByName(protoreflect.FullName(svc))
	}
	d, err := find()
	if errors.Is(err, protoregistry.NotFound) {
		if err = r.load(svc); err == nil {
			d, err = find()
		}
	}
	switch {
	case errors.Is(err, protoregistry.NotFound):
		return nil, fmt.Errorf("method %s: service %s not found in %s", method, svc, r.origin)
	case err != nil:
		return nil, fmt.Errorf("method %s: service %s: %w", method, svc, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("method %s: %s is not a service in %s", method, svc, r.origin)
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		return nil, fmt.Errorf("method %s: service %s has no method %s in %s", method, svc, name, r.origin)
	}
	return md, nil
}

// load asks the source for the file of symbol and registers it with its
// imports. A symbol it could not give is not asked for again.
func (r *registry) load(symbol string) error {
	if r.src == nil {
		return notFound{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err, ok := r.misses[symbol]; ok {
		return err
	}
	if _, err := r.files.FindDescriptorByName(protoreflect.FullName(symbol)); err == nil {
		return nil // loaded meanwhile
	}
	if len(r.misses) >= maxSourceMisses {
		return fmt.Errorf("%s: not asked of %s: %d symbols were not found there already", symbol, r.src.describe(), maxSourceMisses)
	}
	fdps, err := r.src.fileContaining(symbol, func(path string) bool {
		_, err := r.files.FindFileByPath(path)
		return err == nil
	})
	if err == nil {
		err = r.registerLocked(fdps)
	}
	if err == nil {
		if _, ferr := r.files.FindDescriptorByName(protoreflect.FullName(symbol)); ferr != nil {
			err = fmt.Errorf("%s: not in the files %s gave for it", symbol, r.src.describe())
		}
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", r.src.describe(), err)
		r.misses[symbol] = err
	}
	return err
}

// register builds and registers files, each after the files it imports.
func (r *registry) register(fdps []*descriptorpb.FileDescriptorProto) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.registerLocked(fdps)
}

func (r *registry) registerLocked(fdps []*descriptorpb.FileDescriptorProto) error {
	byPath := make(map[string]*descriptorpb.FileDescriptorProto, len(fdps))
	for _, f := range fdps {
		byPath[f.GetName()] = f
	}
	const (
		visiting = 1
		done     = 2
	)
	state := make(map[string]int, len(fdps))
	type frame struct {
		f    *descriptorpb.FileDescriptorProto
		next int // the next import to visit
	}
	// Depth first with a stack of its own: imports may chain as deep as
	// the input makes them.
	for _, root := range fdps {
		if state[root.GetName()] == done {
			continue
		}
		stack := []frame{{f: root}}
		state[root.GetName()] = visiting
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if deps := top.f.GetDependency(); top.next < len(deps) {
				dep := deps[top.next]
				top.next++
				f, ok := byPath[dep]
				switch {
				case !ok || state[dep] == done:
				case state[dep] == visiting:
					return fmt.Errorf("files import each other: %s and %s", top.f.GetName(), dep)
				default:
					state[dep] = visiting
					stack = append(stack, frame{f: f})
				}
				continue
			}
			if err := r.build(top.f); err != nil {
				return err
			}
			state[top.f.GetName()] = done
			stack = stack[:len(stack)-1]
		}
	}
	return nil
}

// build builds one file, whose imports are registered, and registers it.
func (r *registry) build(f *descriptorpb.FileDescriptorProto) error {
	if _, err := r.files.FindFileByPath(f.GetName()); err == nil {
		return nil
	}
	if isWellKnown(f.GetName()) {
		// The linked copy serves: registering another would give two
		// types of one name.
		if _, err := protoregistry.GlobalFiles.FindFileByPath(f.GetName()); err == nil {
			return nil
		}
	}
	if declaresWellKnown(f) {
		// Under another path, or one protobuf does not have: its types
		// would stand in for the linked ones, or for none protobuf has.
		return fmt.Errorf("file %s declares names in package %s, which is protobuf's own: its types are the ones linked here", f.GetName(), f.GetPackage())
	}
	fd, err := protodesc.NewFile(f, importResolver{r.files})
	if err == nil {
		err = r.files.RegisterFile(fd)
	}
	if err != nil {
		return fmt.Errorf("file %s: %w", f.GetName(), err)
	}
	return nil
}

// importResolver resolves the imports of a file being built: the files
// registered, and protobuf's own from the linked copies.
type importResolver struct{ files *protoregistry.Files }

func (i importResolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	fd, err := i.files.FindFileByPath(path)
	if err != nil && isWellKnown(path) {
		return protoregistry.GlobalFiles.FindFileByPath(path)
	}
	return fd, err
}

func (i importResolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	d, err := i.files.FindDescriptorByName(name)
	if err != nil && isWellKnown(string(name)) {
		return protoregistry.GlobalFiles.FindDescriptorByName(name)
	}
	return d, err
}

// fileCount is the number of files registered; it changes when files are
// loaded.
func (r *registry) fileCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.files.NumFiles()
}

// redactedFields lists the fields marked debug_redact in every file
// registered (nested messages and extensions included), by full name.
func (r *registry) redactedFields() []protoreflect.FullName {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var names []protoreflect.FullName
	check := func(fd protoreflect.FieldDescriptor) {
		if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts.GetDebugRedact() {
			names = append(names, fd.FullName())
		}
	}
	r.files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		for i := 0; i < f.Extensions().Len(); i++ {
			check(f.Extensions().Get(i))
		}
		// Nested messages, without recursion.
		var stack []protoreflect.MessageDescriptor
		for i := 0; i < f.Messages().Len(); i++ {
			stack = append(stack, f.Messages().Get(i))
		}
		for len(stack) > 0 {
			md := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for i := 0; i < md.Fields().Len(); i++ {
				check(md.Fields().Get(i))
			}
			for i := 0; i < md.Extensions().Len(); i++ {
				check(md.Extensions().Get(i))
			}
			for i := 0; i < md.Messages().Len(); i++ {
				stack = append(stack, md.Messages().Get(i))
			}
		}
		return true
	})
	return names
}

// notFound is a symbol not found, with what the source said of it. It is
// protoregistry.NotFound to errors.Is, without that error's text, which
// protobuf words at random.
type notFound struct{ detail string }

func (e notFound) Error() string {
	if e.detail == "" {
		return "not found"
	}
	return "not found (" + e.detail + ")"
}

func (e notFound) Is(target error) bool { return target == protoregistry.NotFound }

// lenient is the resolver protojson reads reports with: a type URL that
// the registry cannot resolve gets an empty placeholder type, whose fields
// protojson then discards (DiscardUnknown), so that a report reads whether
// or not its request's type is known. It remembers the URLs it stood in
// for since the last reset. It is used by the reading goroutine only.
type lenient struct {
	r      *registry // nil: no type is known, not even protobuf's own
	missed []string  // type URLs resolved to the placeholder since reset
}

func newLenient(r *registry) *lenient { return &lenient{r: r} }

func (l *lenient) reset() { l.missed = l.missed[:0] }

func (l *lenient) FindMessageByURL(url string) (protoreflect.MessageType, error) {
	if l.r != nil {
		if mt, err := l.r.FindMessageByURL(url); err == nil {
			return mt, nil
		}
	}
	if len(l.missed) < 8 {
		l.missed = append(l.missed, url)
	}
	return placeholder, nil
}

func (l *lenient) FindMessageByName(name protoreflect.FullName) (protoreflect.MessageType, error) {
	if l.r == nil {
		return nil, protoregistry.NotFound
	}
	return l.r.FindMessageByName(name)
}

func (l *lenient) FindExtensionByName(name protoreflect.FullName) (protoreflect.ExtensionType, error) {
	if l.r == nil {
		return nil, protoregistry.NotFound
	}
	return l.r.FindExtensionByName(name)
}

func (l *lenient) FindExtensionByNumber(message protoreflect.FullName, field protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	if l.r == nil {
		return nil, protoregistry.NotFound
	}
	return l.r.FindExtensionByNumber(message, field)
}

// placeholder is the type of every payload whose type is not known: an
// empty message in a file of its own that is registered nowhere. Its name
// is the command's own whatever the type URL says: protojson reads a
// well-known type's JSON form ({"@type": ..., "value": ...}) by the
// name of the type it resolves, into the fields that type has, and a
// placeholder named after one has none.
var placeholder = func() protoreflect.MessageType {
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("parallelrun/unresolved/message.proto"),
		Package:     proto.String("parallelrun.unresolved"),
		Syntax:      proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Message")}},
	}, nil)
	if err != nil {
		panic(err) // a constant descriptor
	}
	return dynamicpb.NewMessageType(fd.Messages().Get(0))
}()
