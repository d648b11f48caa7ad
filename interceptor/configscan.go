package interceptor

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"weak"

	"google.golang.org/protobuf/reflect/protoreflect"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// maxScanDepth bounds the nesting the scan follows. A valid configuration
// nests five levels at most; the scan runs only on what protojson
// accepted, so deeper input never reaches it, and the bound is a second
// guard.
const maxScanDepth = 64

var configDescriptor = (&parallelrunv1.Config{}).ProtoReflect().Descriptor()

// scanKeys walks the JSON form of a Config in one streaming pass and
// calls visit with the key path of each key, array element and map entry
// ("methods[1].diff.ignoredPaths[0]", `methods[0].diff.listKeys["items"]`)
// and its line, in the order they are written, until visit returns false.
// Fields are named by their JSON names (lowerCamelCase) whichever way the
// file spells them, so that a path built from the message finds them.
// Cost: linear in the input, with a stack as deep as the input nests.
func scanKeys(data []byte, visit func(path string, line int) bool) {
	type frame struct {
		object bool
		md     protoreflect.MessageDescriptor // an object that is a message
		fd     protoreflect.FieldDescriptor   // an object that is a map, or an array's field
		path   string
		next   int // an array's next index
		// An object's key just read, until its value.
		key    string
		keyFD  protoreflect.FieldDescriptor
		hasKey bool
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	lines := lineCounter{data: data, line: 1}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		line := lines.at(dec.InputOffset())
		delim, isDelim := tok.(json.Delim)
		if isDelim && (delim == '}' || delim == ']') {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		// Where the token stands, and what it is the value of.
		var path string
		var fd protoreflect.FieldDescriptor
		var md protoreflect.MessageDescriptor
		elem := false
		switch n := len(stack); {
		case n == 0:
			md = configDescriptor
		case stack[n-1].object && !stack[n-1].hasKey:
			top := &stack[n-1]
			key, _ := tok.(string)
			switch {
			case top.fd != nil: // a map's key
				top.key, top.keyFD = top.path+"["+strconv.Quote(key)+"]", top.fd.MapValue()
			case top.md != nil:
				f := top.md.Fields().ByJSONName(key)
				if f == nil {
					f = top.md.Fields().ByTextName(key)
				}
				name := key
				if f != nil {
					name = f.JSONName()
				}
				top.key, top.keyFD = joinPath(top.path, name), f
			default:
				top.key, top.keyFD = joinPath(top.path, key), nil
			}
			top.hasKey = true
			if !visit(top.key, line) {
				return
			}
			continue
		case stack[n-1].object:
			top := &stack[n-1]
			path, fd, top.hasKey = top.key, top.keyFD, false
		default:
			top := &stack[n-1]
			path, fd, elem = top.path+"["+strconv.Itoa(top.next)+"]", top.fd, true
			top.next++
			if !visit(path, line) {
				return
			}
		}
		if !isDelim {
			continue
		}
		if len(stack) >= maxScanDepth {
			return
		}
		f := frame{object: delim == '{', path: path}
		switch {
		case delim == '[' && fd != nil && fd.IsList() && !elem:
			f.fd = fd
		case delim == '[':
		case md != nil:
			f.md = md
		case fd != nil && fd.IsMap() && !elem:
			f.fd = fd
		case fd != nil && fd.Message() != nil && (elem || !fd.IsList()):
			f.md = fd.Message()
		}
		stack = append(stack, f)
	}
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// lineCounter turns increasing byte offsets into line numbers, counting
// each byte once over all calls.
type lineCounter struct {
	data []byte
	pos  int
	line int
}

func (c *lineCounter) at(offset int64) int {
	end := min(int(offset), len(c.data))
	if end > c.pos {
		c.line += bytes.Count(c.data[c.pos:end], []byte{'\n'})
		c.pos = end
	}
	return c.line
}

// lineOf returns the line of the value at path in a JSON configuration,
// or of the nearest enclosing key or element that is written there (a
// field left out has none); 0 when not even that is. The scan stops at
// path.
func lineOf(data []byte, path string) int {
	found := 0
	scanKeys(data, func(p string, line int) bool {
		if p == path {
			found = line
			return false
		}
		// An enclosing key or element: path continues it with "." or "[".
		if len(p) < len(path) && strings.HasPrefix(path, p) && (path[len(p)] == '.' || path[len(p)] == '[') {
			found = line
		}
		return true
	})
	return found
}

// origin is where a configuration that ParseConfig returned came from:
// its file's name and the lines of its noise.secondary keys. The names of
// connections are checked only by MethodRules, which is given them; it
// finds the file and line of an unknown one here.
type origin struct {
	file  string
	lines map[string]int // "methods[1].noise.secondary" -> line
}

// origins maps configurations to their origins with weak keys: an entry
// goes when its configuration is collected, so that parsing configuration
// after configuration holds no memory.
var origins sync.Map // weak.Pointer[parallelrunv1.Config] -> *origin

func remember(cfg *parallelrunv1.Config, o *origin) {
	key := weak.Make(cfg)
	origins.Store(key, o)
	runtime.AddCleanup(cfg, func(key weak.Pointer[parallelrunv1.Config]) { origins.Delete(key) }, key)
}

// originOf returns where cfg came from, or nil when it was not parsed by
// ParseConfig.
func originOf(cfg *parallelrunv1.Config) *origin {
	if v, ok := origins.Load(weak.Make(cfg)); ok {
		return v.(*origin)
	}
	return nil
}

// secondaryLines returns the lines of the noise.secondary keys of a
// configuration, by key path.
func secondaryLines(data []byte) map[string]int {
	lines := map[string]int{}
	scanKeys(data, func(p string, line int) bool {
		if strings.HasPrefix(p, "methods[") && strings.HasSuffix(p, "].noise.secondary") && strings.Count(p, ".") == 2 {
			lines[p] = line
		}
		return true
	})
	return lines
}
