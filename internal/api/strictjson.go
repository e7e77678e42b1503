package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// Request bodies are decoded strictly, in one place for every operation.
// encoding/json keeps the last of duplicate keys and matches struct fields
// case-insensitively while huma validates what it sees first, so
// {"grace_hours":0,"GRACE_HOURS":100000} once passed validation with 0 and
// ran with 100000. We refuse duplicate keys, keys that differ from a field
// name only by case, and NUL characters (Postgres text cannot hold them).

func init() {
	// Schema validation compares property names exactly.
	huma.ValidateStrictCasing = true
}

// strictJSONFormat is huma's JSON format with the strict decoder.
var strictJSONFormat = huma.Format{
	Marshal:   huma.DefaultJSONFormat.Marshal,
	Unmarshal: strictUnmarshal,
}

// apiFormats are the formats of the API (JSON only).
func apiFormats() map[string]huma.Format {
	return map[string]huma.Format{"application/json": strictJSONFormat, "json": strictJSONFormat}
}

func strictUnmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return err
	}
	if err := scanJSON(data); err != nil {
		return err
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.Elem().Kind() != reflect.Interface {
		var parsed any
		if err := json.Unmarshal(data, &parsed); err != nil {
			return err
		}
		return checkCase(rv.Type().Elem(), parsed, "")
	}
	return nil
}

// frame is one open object or array while scanning.
type frame struct {
	object    bool
	keys      map[string]bool
	expectKey bool
	key       string // the current key (objects) …
	index     int    // … or element index (arrays)
}

// scanJSON refuses duplicate object keys and NUL characters at any depth.
func scanJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	where := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.object {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			} else {
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		return b.String()
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				advance(stack[len(stack)-1])
			}
			continue
		}
		if top != nil && top.object && top.expectKey {
			key := tok.(string)
			if top.keys[key] {
				top.key = key
				return fmt.Errorf("duplicate key %q in the request body", where())
			}
			top.keys[key] = true
			top.key, top.expectKey = key, false
			if strings.ContainsRune(key, 0) {
				return fmt.Errorf("the request body has a key with a NUL character (\\u0000)")
			}
			continue
		}
		switch t := tok.(type) {
		case json.Delim: // '{' or '['
			stack = append(stack, &frame{object: t == '{', keys: map[string]bool{}, expectKey: t == '{'})
			continue
		case string:
			if strings.ContainsRune(t, 0) {
				if field := where(); field != "" {
					return fmt.Errorf("invalid field %q: must not contain a NUL character (\\u0000)", field)
				}
				return fmt.Errorf("the request body must not contain a NUL character (\\u0000)")
			}
		}
		if top != nil {
			advance(top)
		}
	}
}

// advance moves a frame past one complete value.
func advance(f *frame) {
	if f.object {
		f.expectKey = true
	} else {
		f.index++
	}
}

// checkCase walks parsed JSON along the Go type it is decoded into and refuses
// an object key that names a struct field only case-insensitively (which
// encoding/json would silently accept).
func checkCase(t reflect.Type, v any, at string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return nil // decodes itself
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := jsonFields(t)
		for k, val := range obj {
			if ft, ok := fields[k]; ok {
				if err := checkCase(ft, val, join(at, k)); err != nil {
					return err
				}
				continue
			}
			for name := range fields {
				if strings.EqualFold(name, k) {
					return fmt.Errorf("unknown field %q (field names are case-sensitive; did you mean %q?)", join(at, k), join(at, name))
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if arr, ok := v.([]any); ok {
			for i, e := range arr {
				if err := checkCase(t.Elem(), e, at+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if obj, ok := v.(map[string]any); ok {
			for k, e := range obj {
				if err := checkCase(t.Elem(), e, join(at, k)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

// jsonFields maps the JSON names of a struct's fields (embedded structs
// flattened, as encoding/json does) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
