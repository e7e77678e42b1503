package api

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/capydb/capydb/internal/wire"
)

type nsLeaf struct {
	Tags []string `json:"tags"`
}

type nsNode struct {
	Name     string    `json:"name"`
	Children []*nsNode `json:"children"`
	Skipped  []string  `json:"skipped,omitempty"`
	Any      any       `json:"any"`
	ByName   map[string]nsLeaf
}

type nsPlain struct {
	ID   string `json:"id"`
	Next *nsPlain
	Raw  json.RawMessage `json:"raw"`
}

func marshalTransformed(t *testing.T, v any) string {
	t.Helper()
	out, err := nilSlicesToEmpty(nil, "200", v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNilSlicesToEmpty(t *testing.T) {
	in := &nsNode{Name: "a", Children: []*nsNode{{Name: "b", Any: nsLeaf{}, ByName: map[string]nsLeaf{"k": {}}}}}
	got := marshalTransformed(t, in)
	want := `{"name":"a","children":[{"name":"b","children":[],"any":{"tags":[]},"ByName":{"k":{"tags":[]}}}],"any":null,"ByName":null}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if in.Children[0].Children != nil {
		t.Fatal("the handler's value was changed in place")
	}
	// A list of projects holds no slice: the body is returned as it is.
	projects := struct {
		Projects []*wire.Project `json:"projects"`
	}{Projects: []*wire.Project{{ID: "prj_1"}, {ID: "prj_2"}}}
	out, _ := nilSlicesToEmpty(nil, "200", &projects)
	if out.(*struct {
		Projects []*wire.Project `json:"projects"`
	}) != &projects {
		t.Fatal("a body without nil slices was copied")
	}
	var none struct {
		Projects []*wire.Project `json:"projects"`
	}
	if got := marshalTransformed(t, &none); got != `{"projects":[]}` {
		t.Fatalf("nil project list: %s", got)
	}
	if got := marshalTransformed(t, &nsPlain{ID: "x", Next: &nsPlain{}}); got != `{"id":"x","Next":{"id":"","Next":null,"raw":null},"raw":null}` {
		t.Fatalf("slice-free recursive type: %s", got)
	}
}

func TestSliceFreeTypes(t *testing.T) {
	for _, c := range []struct {
		v    any
		free bool
	}{
		{wire.Project{}, true}, {&wire.Project{}, true}, {[]*wire.Project{}, false},
		{nsPlain{}, true}, {nsNode{}, false}, {nsLeaf{}, false}, {map[string]int{}, true},
		{map[string]any{}, false}, {json.RawMessage{}, true},
	} {
		if got := infoOf(reflect.TypeOf(c.v)).sliceFree; got != c.free {
			t.Errorf("%T: sliceFree %v, want %v", c.v, got, c.free)
		}
	}
}
