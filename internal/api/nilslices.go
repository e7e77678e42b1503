package api

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

// nilSlicesToEmpty is the response transformer that keeps the document's
// promise that lists are never null (API.md §1.5): a nil slice anywhere in
// a response body (not behind omitempty, which drops it) becomes []. Bodies
// without one are returned as they are; the others are copied, never
// changed in place, because a handler may answer a value it shares.
func nilSlicesToEmpty(_ huma.Context, _ string, v any) (any, error) {
	if v == nil {
		return v, nil
	}
	rv := reflect.ValueOf(v)
	if !hasNilSlice(rv, 0) {
		return v, nil
	}
	return fillSlices(rv, 0).Interface(), nil
}

var rawMessageType = reflect.TypeOf(json.RawMessage(nil))

// maxDepth bounds the walk (wire types are a few levels deep; a cycle is a bug).
const maxDepth = 32

// skipSlice is a slice JSON does not encode as a list ([]byte, RawMessage).
func skipSlice(t reflect.Type) bool {
	return t == rawMessageType || t.Elem().Kind() == reflect.Uint8
}

// typeInfo is what the walk needs of a type, worked out once: whether a
// value of it can hold a listed slice at all (a 1,000-project list is
// otherwise 30,000 struct-tag parses per response), and which struct fields
// JSON writes.
type typeInfo struct {
	sliceFree bool
	fields    []int
}

var typeInfos sync.Map // reflect.Type -> *typeInfo

func infoOf(t reflect.Type) *typeInfo {
	if ti, ok := typeInfos.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti := &typeInfo{sliceFree: sliceFree(t, map[reflect.Type]bool{})}
	if t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			if encoded(t.Field(i)) {
				ti.fields = append(ti.fields, i)
			}
		}
	}
	typeInfos.Store(t, ti)
	return ti
}

// sliceFree reports whether hasNilSlice is false for every value of t: it
// mirrors the walk below over types instead of values. A type met again
// (a cycle) adds nothing the first visit does not decide.
func sliceFree(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return false
	case reflect.Pointer, reflect.Map:
		return sliceFree(t.Elem(), seen)
	case reflect.Slice:
		return skipSlice(t)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); encoded(f) && !sliceFree(f.Type, seen) {
				return false
			}
		}
	}
	return true
}

func hasNilSlice(v reflect.Value, depth int) bool {
	if depth > maxDepth || infoOf(v.Type()).sliceFree {
		return false
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return !v.IsNil() && hasNilSlice(v.Elem(), depth+1)
	case reflect.Slice:
		if skipSlice(v.Type()) {
			return false
		}
		if v.IsNil() {
			return true
		}
		if infoOf(v.Type().Elem()).sliceFree {
			return false
		}
		for i := range v.Len() {
			if hasNilSlice(v.Index(i), depth+1) {
				return true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if hasNilSlice(it.Value(), depth+1) {
				return true
			}
		}
	case reflect.Struct:
		for _, i := range infoOf(v.Type()).fields {
			if hasNilSlice(v.Field(i), depth+1) {
				return true
			}
		}
	}
	return false
}

// encoded reports whether JSON writes the field even when it is a nil slice.
func encoded(f reflect.StructField) bool {
	if !f.IsExported() {
		return false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return false
	}
	if f.Type.Kind() == reflect.Slice {
		_, opts, _ := strings.Cut(tag, ",")
		return !slices.Contains(strings.Split(opts, ","), "omitempty")
	}
	return true
}

// fillSlices returns a copy of v in which every nil slice is empty.
func fillSlices(v reflect.Value, depth int) reflect.Value {
	if depth > maxDepth || !hasNilSlice(v, depth) {
		return v
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(fillSlices(v.Elem(), depth+1))
		return p
	case reflect.Interface:
		out := reflect.New(v.Type()).Elem()
		out.Set(fillSlices(v.Elem(), depth+1))
		return out
	case reflect.Slice:
		if v.IsNil() {
			return reflect.MakeSlice(v.Type(), 0, 0)
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(fillSlices(v.Index(i), depth+1))
		}
		return out
	case reflect.Map:
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), fillSlices(it.Value(), depth+1))
		}
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for _, i := range infoOf(v.Type()).fields {
			out.Field(i).Set(fillSlices(v.Field(i), depth+1))
		}
		return out
	}
	return v
}
