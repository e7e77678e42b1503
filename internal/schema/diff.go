package schema

import (
	"fmt"
	"slices"
	"strings"
)

// SchemaDifference is one structural change from a baseline schema to a target:
// an object added (only in the target), removed (only in the baseline) or
// changed (Field says what, From and To the baseline and target values).
type SchemaDifference struct {
	Change     string `json:"change" enum:"added,removed,changed"`
	ObjectType string `json:"object_type" enum:"extension,schema,table,column,enum,primary_key,foreign_key,unique_constraint"`
	Object     string `json:"object" doc:"qualified name, e.g. public.orders.total or public.orders.orders_user_id_fkey"`
	Field      string `json:"field,omitempty"`
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
}

// SchemaDiff is the comparison of two schemas.
type SchemaDiff struct {
	Baseline    string             `json:"baseline" doc:"what the target was compared against"`
	Target      string             `json:"target,omitempty" doc:"what was compared (self-hosted addition)"`
	Differences []SchemaDifference `json:"differences"`
	InSync      bool               `json:"in_sync"`
}

// Compare lists the differences from baseline to target in a stable order:
// extensions, then schema by schema, enums and tables by name, each table's
// own changes before its columns'. Database names and server versions are
// not compared (two databases of one project always differ there).
func Compare(baseline, target *DatabaseSchema) []SchemaDifference {
	d := &differ{out: []SchemaDifference{}}
	d.extensions(baseline.Extensions, target.Extensions)
	bs, ts := indexBy(baseline.Schemas, func(n SchemaNamespace) string { return n.Name }), indexBy(target.Schemas, func(n SchemaNamespace) string { return n.Name })
	for _, name := range unionKeys(bs, ts) {
		b, inB := bs[name]
		t, inT := ts[name]
		switch {
		case !inT:
			d.add("removed", "schema", name, "", "", "")
		case !inB:
			d.add("added", "schema", name, "", "", "")
		}
		d.namespace(name, b, t)
	}
	return d.out
}

type differ struct{ out []SchemaDifference }

func (d *differ) add(change, typ, obj, field, from, to string) {
	d.out = append(d.out, SchemaDifference{Change: change, ObjectType: typ, Object: obj, Field: field, From: from, To: to})
}

func (d *differ) extensions(b, t []SchemaExtension) {
	bm, tm := indexBy(b, func(e SchemaExtension) string { return e.Name }), indexBy(t, func(e SchemaExtension) string { return e.Name })
	for _, name := range unionKeys(bm, tm) {
		be, inB := bm[name]
		te, inT := tm[name]
		switch {
		case !inT:
			d.add("removed", "extension", name, "", be.Version, "")
		case !inB:
			d.add("added", "extension", name, "", "", te.Version)
		case be.Version != te.Version:
			d.add("changed", "extension", name, "version", be.Version, te.Version)
		}
	}
}

func (d *differ) namespace(schema string, b, t SchemaNamespace) {
	be, te := indexBy(b.Enums, func(e SchemaEnum) string { return e.Name }), indexBy(t.Enums, func(e SchemaEnum) string { return e.Name })
	for _, name := range unionKeys(be, te) {
		obj := schema + "." + name
		x, inB := be[name]
		y, inT := te[name]
		switch {
		case !inT:
			d.add("removed", "enum", obj, "", "", "")
		case !inB:
			d.add("added", "enum", obj, "", "", "")
		case !slices.Equal(x.Values, y.Values):
			d.add("changed", "enum", obj, "values", strings.Join(x.Values, ", "), strings.Join(y.Values, ", "))
		}
	}
	bt, tt := indexBy(b.Tables, func(t SchemaTable) string { return t.Name }), indexBy(t.Tables, func(t SchemaTable) string { return t.Name })
	for _, name := range unionKeys(bt, tt) {
		obj := schema + "." + name
		x, inB := bt[name]
		y, inT := tt[name]
		switch {
		case !inT:
			d.add("removed", "table", obj, "", x.Kind, "")
		case !inB:
			d.add("added", "table", obj, "", "", y.Kind)
		default:
			d.table(obj, x, y)
		}
	}
}

func (d *differ) table(obj string, b, t SchemaTable) {
	if b.Kind != t.Kind {
		d.add("changed", "table", obj, "kind", b.Kind, t.Kind)
	}
	switch {
	case len(b.PrimaryKey) > 0 && len(t.PrimaryKey) == 0:
		d.add("removed", "primary_key", obj, "", cols(b.PrimaryKey), "")
	case len(b.PrimaryKey) == 0 && len(t.PrimaryKey) > 0:
		d.add("added", "primary_key", obj, "", "", cols(t.PrimaryKey))
	case !slices.Equal(b.PrimaryKey, t.PrimaryKey):
		d.add("changed", "primary_key", obj, "columns", cols(b.PrimaryKey), cols(t.PrimaryKey))
	}
	bc, tc := indexBy(b.Columns, func(c SchemaColumn) string { return c.Name }), indexBy(t.Columns, func(c SchemaColumn) string { return c.Name })
	// Columns in the target's order, then those only the baseline has.
	var order []string
	for _, c := range t.Columns {
		order = append(order, c.Name)
	}
	for _, c := range b.Columns {
		if _, ok := tc[c.Name]; !ok {
			order = append(order, c.Name)
		}
	}
	for _, name := range order {
		x, inB := bc[name]
		y, inT := tc[name]
		o := obj + "." + name
		switch {
		case !inT:
			d.add("removed", "column", o, "", x.DataType, "")
		case !inB:
			d.add("added", "column", o, "", "", y.DataType)
		default:
			d.column(o, x, y)
		}
	}
	bf, tf := indexBy(b.ForeignKeys, func(f SchemaForeignKey) string { return f.Name }), indexBy(t.ForeignKeys, func(f SchemaForeignKey) string { return f.Name })
	for _, name := range unionKeys(bf, tf) {
		x, inB := bf[name]
		y, inT := tf[name]
		o := obj + "." + name
		switch {
		case !inT:
			d.add("removed", "foreign_key", o, "", fkText(x), "")
		case !inB:
			d.add("added", "foreign_key", o, "", "", fkText(y))
		case fkText(x) != fkText(y):
			d.add("changed", "foreign_key", o, "definition", fkText(x), fkText(y))
		}
	}
	bu, tu := indexBy(b.UniqueConstraints, func(u SchemaUniqueConstraint) string { return u.Name }), indexBy(t.UniqueConstraints, func(u SchemaUniqueConstraint) string { return u.Name })
	for _, name := range unionKeys(bu, tu) {
		x, inB := bu[name]
		y, inT := tu[name]
		o := obj + "." + name
		switch {
		case !inT:
			d.add("removed", "unique_constraint", o, "", cols(x.Columns), "")
		case !inB:
			d.add("added", "unique_constraint", o, "", "", cols(y.Columns))
		case !slices.Equal(x.Columns, y.Columns):
			d.add("changed", "unique_constraint", o, "columns", cols(x.Columns), cols(y.Columns))
		}
	}
}

func (d *differ) column(obj string, b, t SchemaColumn) {
	if b.DataType != t.DataType {
		d.add("changed", "column", obj, "data_type", b.DataType, t.DataType)
	}
	if b.IsNullable != t.IsNullable {
		d.add("changed", "column", obj, "is_nullable", fmt.Sprint(b.IsNullable), fmt.Sprint(t.IsNullable))
	}
	if b.Default != t.Default {
		d.add("changed", "column", obj, "default", b.Default, t.Default)
	}
	if b.Identity != t.Identity {
		d.add("changed", "column", obj, "identity", b.Identity, t.Identity)
	}
	if b.Generated != t.Generated {
		d.add("changed", "column", obj, "generated", b.Generated, t.Generated)
	}
}

func cols(c []string) string { return "(" + strings.Join(c, ", ") + ")" }

func fkText(f SchemaForeignKey) string {
	return fmt.Sprintf("%s REFERENCES %s.%s%s ON UPDATE %s ON DELETE %s", cols(f.Columns), f.ReferencedSchema,
		f.ReferencedTable, cols(f.ReferencedColumns), f.OnUpdate, f.OnDelete)
}

func indexBy[T any](items []T, key func(T) string) map[string]T {
	m := make(map[string]T, len(items))
	for _, it := range items {
		m[key(it)] = it
	}
	return m
}

// unionKeys is the sorted union of two maps' keys.
func unionKeys[T any](a, b map[string]T) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
