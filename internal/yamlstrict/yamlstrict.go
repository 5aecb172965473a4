// Package yamlstrict decodes YAML documents strictly: a key the target type
// does not have is an error naming the key's dotted path and line, and any
// later error can be tied to the line of the field it is about. The
// configuration loader and the rule loader share it.
package yamlstrict

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a problem at a place in a document.
type Error struct {
	Line int    // 1-based; 0 when unknown
	Path string // dotted path of the field, e.g. "rules[2].severity"; may be empty
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Path != "" {
		b.WriteString(strconv.Quote(e.Path) + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Explain may say why an unknown key is unknown (e.g. "secrets are not read
// from the file"); "" means it is simply unknown.
type Explain func(parent reflect.Type, key string) string

var (
	unmarshalerType     = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// Decode decodes n onto v (a pointer), rejecting unknown keys first. Values
// v already holds and n does not set are kept (defaults).
func Decode(n *yaml.Node, v any, explain Explain) error {
	if err := Check(n, reflect.TypeOf(v).Elem(), "", explain); err != nil {
		return err
	}
	if err := n.Decode(v); err != nil {
		return TypeError(err, Lines(n))
	}
	return nil
}

// Check walks n alongside type t and returns an *Error for the first
// mapping key t has no field for (by yaml tag). prefix is the path of n.
func Check(n *yaml.Node, t reflect.Type, prefix string, explain Explain) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) ||
		n.Kind == yaml.AliasNode {
		return nil // decodes itself
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return &Error{Line: n.Line, Path: strings.TrimSuffix(prefix, "."), Msg: "want a mapping"}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := field(t, k.Value)
			if !ok {
				msg := "unknown key"
				if explain != nil {
					if why := explain(t, k.Value); why != "" {
						msg = why
					}
				}
				return &Error{Line: k.Line, Path: prefix + k.Value, Msg: msg}
			}
			if err := Check(v, f.Type, prefix+k.Value+".", explain); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for i, item := range n.Content {
				if err := Check(item, t.Elem(), fmt.Sprintf("%s[%d].", strings.TrimSuffix(prefix, "."), i), explain); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if err := Check(n.Content[i+1], t.Elem(), prefix+n.Content[i].Value+".", explain); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Name is a struct field's YAML key ("" for none or "-").
func Name(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func field(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if Name(f) == key {
			return f, true
		}
		if f.Anonymous && strings.Contains(f.Tag.Get("yaml"), ",inline") {
			if g, ok := field(f.Type, key); ok {
				return g, true
			}
		}
	}
	return reflect.StructField{}, false
}

// Lines maps the dotted path of every value in n (e.g. "rules[0].severity",
// "" for n itself) to its line.
func Lines(n *yaml.Node) map[string]int {
	m := map[string]int{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
			walk(n.Content[0], path)
			return
		}
		if _, ok := m[path]; !ok {
			m[path] = n.Line
		}
		sep := "."
		if path == "" {
			sep = ""
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				// A field's line is its key's line.
				m[path+sep+n.Content[i].Value] = n.Content[i].Line
				walk(n.Content[i+1], path+sep+n.Content[i].Value)
				m[path+sep+n.Content[i].Value] = n.Content[i].Line
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, path+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(n, "")
	return m
}

var lineRe = regexp.MustCompile(`^line (\d+): (.*)$`)

// TypeError turns a yaml.v3 decoding error into an *Error naming the first
// problem's line and, when lines is given, the field on that line.
func TypeError(err error, lines map[string]int) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return err
	}
	m := lineRe.FindStringSubmatch(te.Errors[0])
	if m == nil {
		return &Error{Msg: te.Errors[0]}
	}
	line, _ := strconv.Atoi(m[1])
	path := ""
	for p, l := range lines {
		if l == line && (path == "" || len(p) > len(path)) {
			path = p
		}
	}
	return &Error{Line: line, Path: path, Msg: m[2]}
}
