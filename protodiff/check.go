package protodiff

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// CheckError is one option value that does not fit the message type given
// to [Differ.Check]. Such a value is not an error for [Differ.Diff], which
// simply never meets it, but it is most likely a typo.
type CheckError struct {
	Option string                // the option, such as "WithIgnoredPaths"
	Value  string                // the path or name as given
	Type   protoreflect.FullName // the message type checked against
	Err    error                 // what is wrong
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("protodiff: %s %q: %s: %v", e.Option, e.Value, e.Type, e.Err)
}

func (e *CheckError) Unwrap() error { return e.Err }

// Check reports the option values that do not fit messages of type md,
// as an [errors.Join] of [*CheckError] values, or nil: a path whose
// segment names no field (paths start at md), a "(full.name)" after an Any
// that the Differ's resolver cannot find or after a message it does not
// extend, a [WithListKey] list that is not a repeated message field or
// whose key is not a singular scalar field, a [WithUnorderedLists] field
// that is not a list, a [WithFloatToleranceAt] field that is neither a
// float, a double nor a message, and a [WithIgnoredFields] name that
// [protoregistry.GlobalFiles] does not know as a field. Unknown field
// numbers in paths are accepted as they are.
func (d *Differ) Check(md protoreflect.MessageDescriptor) error {
	var errs []error
	add := func(option, value string, err error) {
		errs = append(errs, &CheckError{Option: option, Value: value, Type: md.FullName(), Err: err})
	}
	o := &d.opts
	for _, p := range o.ignorePaths {
		if _, err := d.resolvePath(md, p); err != nil {
			add("WithIgnoredPaths", p, err)
		}
	}
	for _, p := range o.redactPaths {
		if _, err := d.resolvePath(md, p); err != nil {
			add("WithRedactedPaths", p, err)
		}
	}
	for _, pt := range o.pathTolerances {
		fd, err := d.resolvePath(md, pt.path)
		if err == nil && fd != nil && fd.Message() == nil &&
			fd.Kind() != protoreflect.FloatKind && fd.Kind() != protoreflect.DoubleKind {
			err = fmt.Errorf("%s is a %s field, not a float, double or message field", fd.FullName(), fd.Kind())
		}
		if err != nil {
			add("WithFloatToleranceAt", pt.path, err)
		}
	}
	for _, p := range o.unordered {
		fd, err := d.resolvePath(md, p)
		if err == nil && (fd == nil || !fd.IsList()) {
			err = fmt.Errorf("%s is not a repeated field", pathTarget(fd, p))
		}
		if err != nil {
			add("WithUnorderedLists", p, err)
		}
	}
	for _, lk := range o.listKeys {
		fd, err := d.resolvePath(md, lk.path)
		if err == nil {
			err = checkListKey(fd, lk)
		}
		if err != nil {
			add("WithListKey", lk.path, err)
		}
	}
	for _, name := range o.ignoreNames {
		if err := checkFieldName(name); err != nil {
			add("WithIgnoredFields", string(name), err)
		}
	}
	return errors.Join(errs...)
}

func pathTarget(fd protoreflect.FieldDescriptor, p string) string {
	if fd == nil {
		return fmt.Sprintf("%q", p)
	}
	return string(fd.FullName())
}

func checkListKey(fd protoreflect.FieldDescriptor, lk listKey) error {
	if fd == nil || !fd.IsList() || fd.Message() == nil {
		return fmt.Errorf("%s is not a repeated message field", pathTarget(fd, lk.path))
	}
	em := fd.Message()
	k := em.Fields().ByName(protoreflect.Name(lk.field))
	switch {
	case k == nil:
		return fmt.Errorf("key: no field %q in %s", lk.field, em.FullName())
	case k.IsList() || k.IsMap() || k.Message() != nil:
		return fmt.Errorf("key: %s is not a singular scalar field", k.FullName())
	}
	return nil
}

func checkFieldName(name protoreflect.FullName) error {
	desc, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
	if err != nil {
		if parent, perr := protoregistry.GlobalFiles.FindDescriptorByName(name.Parent()); perr == nil {
			if pm, ok := parent.(protoreflect.MessageDescriptor); ok {
				return fmt.Errorf("no field %q in %s", name.Name(), pm.FullName())
			}
		}
		return errors.New("no such field in the global registry")
	}
	if _, ok := desc.(protoreflect.FieldDescriptor); !ok {
		return fmt.Errorf("%s is not a field", name)
	}
	return nil
}

// resolvePath follows an index-free path from md, the way rules apply
// during the walk (below a list or map, in its elements or values). It
// returns the field the path ends at: nil when it ends at the payload of
// an Any or at an unknown field number.
func (d *Differ) resolvePath(md protoreflect.MessageDescriptor, p string) (protoreflect.FieldDescriptor, error) {
	segs, err := parsePath(p)
	if err != nil {
		return nil, err
	}
	cur := md
	var fd protoreflect.FieldDescriptor
	for _, s := range segs {
		if cur == nil {
			return nil, fmt.Errorf("%s is a %s field: nothing is below it", fd.FullName(), fd.Kind())
		}
		switch {
		case s.number != 0:
			return nil, nil
		case s.paren != "" && cur.FullName() == anyName:
			if d.resolver == nil {
				return nil, fmt.Errorf("%s: Any payloads are compared as bytes (WithRawAny)", s.paren)
			}
			mt, err := d.findType(s.paren)
			if err != nil {
				return nil, fmt.Errorf("the Any resolver does not know %s", s.paren)
			}
			cur, fd = mt.Descriptor(), nil
		case s.paren != "":
			xt, err := d.findExtension(s.paren)
			if err != nil {
				return nil, fmt.Errorf("no extension %s", s.paren)
			}
			xd := xt.TypeDescriptor()
			if xd.ContainingMessage().FullName() != cur.FullName() {
				return nil, fmt.Errorf("%s extends %s, not %s", s.paren, xd.ContainingMessage().FullName(), cur.FullName())
			}
			fd, cur = xd, xd.Message()
		default:
			f := cur.Fields().ByName(s.name)
			if f == nil {
				return nil, fmt.Errorf("no field %q in %s", s.name, cur.FullName())
			}
			fd = f
			if f.IsMap() {
				cur = f.MapValue().Message()
			} else {
				cur = f.Message()
			}
		}
	}
	return fd, nil
}

// findType asks the Any resolver for a full name, bare or as a URL.
func (d *Differ) findType(name protoreflect.FullName) (protoreflect.MessageType, error) {
	mt, err := d.resolver.FindMessageByURL(string(name))
	if err != nil {
		mt, err = d.resolver.FindMessageByURL("type.googleapis.com/" + string(name))
	}
	return mt, err
}

// findExtension looks an extension up where the walk finds extensions.
func (d *Differ) findExtension(name protoreflect.FullName) (protoreflect.ExtensionType, error) {
	if r, ok := d.exts.(interface {
		FindExtensionByName(protoreflect.FullName) (protoreflect.ExtensionType, error)
	}); ok {
		if xt, err := r.FindExtensionByName(name); err == nil {
			return xt, nil
		}
	}
	return protoregistry.GlobalTypes.FindExtensionByName(name)
}
