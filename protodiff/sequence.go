package protodiff

import (
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// DiffUnordered compares two sequences of messages of one type as
// multisets, the way [WithUnorderedLists] compares a list, for messages
// that come one by one rather than in a list field, such as the replies of
// a stream. Each message left without an equal partner is reported once,
// as [Removed] with its legacy index or [Added] with its candidate index;
// paths start with the index: `[3].price.units`. Path options apply to
// each message, from its root. Its cost is that of [WithUnorderedLists] on
// a list of messages. Messages of several types, or nil ones, give a
// single [TypeChanged] difference at the empty path.
func (d *Differ) DiffUnordered(legacy, candidate []proto.Message) Result {
	md, err := sequenceType(legacy, candidate)
	if err != nil {
		return Result{Differences: []Difference{{Kind: TypeChanged, Legacy: err.Error()}}}
	}
	if md == nil {
		return Result{} // two empty sequences
	}
	fd, err := d.elementField(md)
	if err != nil {
		return Result{Differences: []Difference{{Kind: TypeChanged, Legacy: err.Error()}}}
	}
	w := d.walkers.Get().(*walker)
	w.tol = d.tol
	w.work = d.maxWork
	w.credit = preChecks
	w.unorderedList(fd, messageList(legacy), messageList(candidate), d.root)
	res := Result{Differences: w.diffs, Truncated: w.truncated, Incomplete: w.incomplete}
	w.reset()
	d.walkers.Put(w)
	return res
}

// sequenceType is the one message type of both sequences.
func sequenceType(seqs ...[]proto.Message) (protoreflect.MessageDescriptor, error) {
	var md protoreflect.MessageDescriptor
	for _, seq := range seqs {
		for i, m := range seq {
			if m == nil || !m.ProtoReflect().IsValid() {
				return nil, fmt.Errorf("message %d is nil", i)
			}
			switch got := m.ProtoReflect().Descriptor(); {
			case md == nil:
				md = got
			case got.FullName() != md.FullName():
				return nil, fmt.Errorf("messages of types %s and %s", md.FullName(), got.FullName())
			}
		}
	}
	return md, nil
}

// messageList is a sequence of messages seen as a read-only list.
type messageList []proto.Message

var _ protoreflect.List = messageList(nil)

func (l messageList) Len() int { return len(l) }
func (l messageList) Get(i int) protoreflect.Value {
	return protoreflect.ValueOfMessage(l[i].ProtoReflect())
}
func (l messageList) IsValid() bool { return true }

var errReadOnly = errors.New("protodiff: a sequence of messages is read-only")

func (messageList) Set(int, protoreflect.Value)       { panic(errReadOnly) }
func (messageList) Append(protoreflect.Value)         { panic(errReadOnly) }
func (messageList) AppendMutable() protoreflect.Value { panic(errReadOnly) }
func (messageList) Truncate(int)                      { panic(errReadOnly) }
func (messageList) NewElement() protoreflect.Value    { panic(errReadOnly) }

// elementFields holds, per message type, the descriptor of a repeated
// field of it: as many as the program has message types.
var elementFields sync.Map // protoreflect.MessageDescriptor -> protoreflect.FieldDescriptor

// elementField is the descriptor of a repeated field of md, built once per
// type, so that a sequence of messages walks as a list does.
func (d *Differ) elementField(md protoreflect.MessageDescriptor) (protoreflect.FieldDescriptor, error) {
	if fd, ok := elementFields.Load(md); ok {
		return fd.(protoreflect.FieldDescriptor), nil
	}
	file := md.ParentFile()
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("protodiff/sequence/" + string(md.FullName()) + ".proto"),
		Package:    proto.String("protodiff.sequence"),
		Dependency: []string{file.Path()},
		Syntax:     proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Sequence"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name:     proto.String("elements"),
				Number:   proto.Int32(1),
				Label:    descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(),
				Type:     descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
				TypeName: proto.String("." + string(md.FullName())),
			}},
		}},
	}
	f, err := protodesc.NewFile(fdp, oneFile{file})
	if err != nil {
		return nil, fmt.Errorf("protodiff: a list of %s: %w", md.FullName(), err)
	}
	fd := f.Messages().Get(0).Fields().Get(0)
	actual, _ := elementFields.LoadOrStore(md, fd)
	return actual.(protoreflect.FieldDescriptor), nil
}

// oneFile resolves the file of a sequence's message type and the type.
type oneFile struct{ f protoreflect.FileDescriptor }

func (r oneFile) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if path == r.f.Path() {
		return r.f, nil
	}
	return nil, protoregistry.NotFound
}

func (r oneFile) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d := findIn(r.f.Messages(), name); d != nil {
		return d, nil
	}
	return nil, protoregistry.NotFound
}

func findIn(msgs protoreflect.MessageDescriptors, name protoreflect.FullName) protoreflect.Descriptor {
	for i := range msgs.Len() {
		m := msgs.Get(i)
		if m.FullName() == name {
			return m
		}
		if d := findIn(m.Messages(), name); d != nil {
			return d
		}
	}
	return nil
}
