package typegen

import (
	"fmt"
	"strings"

	"github.com/capydb/capydb/internal/schema"
)

// drizzleTS renders a drizzle-orm (pg-core) schema: enums, schemas, tables
// with their keys and constraints, and views as .existing() (drizzle must
// not try to create them).
func drizzleTS(m *model) string {
	d := &drizzle{m: m, n: namer{}, tableVar: map[string]string{}, enumVar: map[string]string{}, schemaVar: map[string]string{}}
	for _, r := range []string{"sql", "bytea", "pgType", "Json", "AnyPgColumn"} {
		d.n[r] = true
	}
	return d.render()
}

type drizzle struct {
	m         *model
	n         namer
	tableVar  map[string]string // "schema.table"
	enumVar   map[string]string // "schema.enum"
	schemaVar map[string]string
	b         strings.Builder
}

func (d *drizzle) render() string {
	b := &d.b
	b.WriteString("// " + header(d.m.s) + "\n\n")
	b.WriteString("import { sql } from \"drizzle-orm\";\n")
	b.WriteString("import {\n  type AnyPgColumn, bigint, boolean, char, customType, date, doublePrecision, foreignKey, inet, integer,\n" +
		"  interval, json, jsonb, numeric, pgEnum, pgMaterializedView, pgSchema, pgTable, pgView, primaryKey, real, smallint,\n" +
		"  text, time, timestamp, unique, uuid, varchar,\n} from \"drizzle-orm/pg-core\";\n\n")
	b.WriteString("export const bytea = customType<{ data: string }>({ dataType: () => \"bytea\" });\n")
	b.WriteString("export const pgType = (dataType: string) => customType<{ data: unknown }>({ dataType: () => dataType });\n")
	for _, ns := range d.m.s.Schemas {
		if ns.Name != "public" {
			v := d.n.get(tsIdent(ns.Name) + "Schema")
			d.schemaVar[ns.Name] = v
			fmt.Fprintf(b, "export const %s = pgSchema(%s);\n", v, jsString(ns.Name))
		}
	}
	for _, e := range d.m.enums {
		if len(e.Values) == 0 {
			continue // pgEnum needs a value; its columns use pgType
		}
		v := d.n.get(tsIdent(e.Name) + "Enum")
		if e.Schema != "public" {
			v = d.n.get(tsIdent(e.Schema+"_"+e.Name) + "Enum")
		}
		d.enumVar[e.Schema+"."+e.Name] = v
		fn := "pgEnum"
		if e.Schema != "public" {
			fn = d.schemaVar[e.Schema] + ".enum"
		}
		fmt.Fprintf(b, "export const %s = %s(%s, [%s]);\n", v, fn, jsString(e.Name), jsList(e.Values))
	}
	ordered := d.order()
	for _, t := range ordered {
		base := tsIdent(t.Name)
		if t.Schema != "public" {
			base = tsIdent(t.Schema + "_" + t.Name)
		}
		d.tableVar[t.Schema+"."+t.Name] = d.n.get(base)
	}
	for _, t := range ordered {
		d.relation(t)
	}
	return b.String()
}

// order puts referenced tables before the tables referencing them where
// the references allow (cycles keep the schema order), so most foreign
// keys point backwards.
func (d *drizzle) order() []tableRef {
	done := map[string]bool{}
	var out []tableRef
	var visit func(t tableRef, depth int)
	byKey := map[string]tableRef{}
	for _, t := range d.m.tables {
		byKey[t.Schema+"."+t.Name] = t
	}
	visiting := map[string]bool{}
	visit = func(t tableRef, depth int) {
		key := t.Schema + "." + t.Name
		if done[key] || visiting[key] {
			return
		}
		visiting[key] = true
		for _, fk := range t.ForeignKeys {
			if r, ok := byKey[fk.ReferencedSchema+"."+fk.ReferencedTable]; ok {
				visit(r, depth+1)
			}
		}
		visiting[key] = false
		done[key] = true
		out = append(out, t)
	}
	for _, t := range d.m.tables {
		visit(t, 0)
	}
	return out
}

var drizzleActions = map[string]string{"NO ACTION": "no action", "RESTRICT": "restrict", "CASCADE": "cascade",
	"SET NULL": "set null", "SET DEFAULT": "set default"}

func (d *drizzle) relation(t tableRef) {
	b := &d.b
	v := d.tableVar[t.Schema+"."+t.Name]
	fn := map[string]string{schema.KindView: "pgView", schema.KindMaterializedView: "pgMaterializedView"}[t.Kind]
	if fn == "" {
		fn = "pgTable"
	}
	if t.Schema != "public" {
		fn = d.schemaVar[t.Schema] + "." + map[string]string{"pgTable": "table", "pgView": "view", "pgMaterializedView": "materializedView"}[fn]
	}
	b.WriteString("\n" + comment("//", describe(qualified(t.Schema, t.Name)+" ("+t.Kind+")", t.Comment)))
	fmt.Fprintf(b, "export const %s = %s(%s, {\n", v, fn, jsString(t.Name))
	singleFK := map[string]schema.SchemaForeignKey{}
	for _, fk := range t.ForeignKeys {
		if len(fk.Columns) == 1 {
			singleFK[fk.Columns[0]] = fk
		}
	}
	for _, c := range t.Columns {
		expr := d.column(&c)
		if !t.IsView() {
			if len(t.PrimaryKey) == 1 && t.PrimaryKey[0] == c.Name {
				expr += ".primaryKey()"
			} else if !c.IsNullable {
				expr += ".notNull()"
			}
			if fk, ok := singleFK[c.Name]; ok {
				if rv, ok := d.tableVar[fk.ReferencedSchema+"."+fk.ReferencedTable]; ok {
					expr += fmt.Sprintf(".references((): AnyPgColumn => %s[%s], { onUpdate: %s, onDelete: %s })",
						rv, jsString(fk.ReferencedColumns[0]), jsString(drizzleActions[fk.OnUpdate]), jsString(drizzleActions[fk.OnDelete]))
				}
			}
		}
		fmt.Fprintf(b, "  %s: %s,\n", tsKey(c.Name), expr)
	}
	if t.IsView() {
		b.WriteString("}).existing();\n")
		return
	}
	var extra []string
	col := func(cols []string, of string) string {
		q := make([]string, len(cols))
		for i, c := range cols {
			q[i] = of + "[" + jsString(c) + "]"
		}
		return strings.Join(q, ", ")
	}
	if len(t.PrimaryKey) > 1 {
		extra = append(extra, fmt.Sprintf("primaryKey({ columns: [%s] })", col(t.PrimaryKey, "t")))
	}
	for _, fk := range t.ForeignKeys {
		rv, ok := d.tableVar[fk.ReferencedSchema+"."+fk.ReferencedTable]
		if len(fk.Columns) == 1 || !ok {
			continue
		}
		if fk.ReferencedSchema == t.Schema && fk.ReferencedTable == t.Name {
			rv = "t"
		}
		extra = append(extra, fmt.Sprintf("foreignKey({ name: %s, columns: [%s], foreignColumns: [%s] }).onUpdate(%s).onDelete(%s)",
			jsString(fk.Name), col(fk.Columns, "t"), col(fk.ReferencedColumns, rv), jsString(drizzleActions[fk.OnUpdate]), jsString(drizzleActions[fk.OnDelete])))
	}
	for _, u := range t.UniqueConstraints {
		extra = append(extra, fmt.Sprintf("unique(%s).on(%s)", jsString(u.Name), col(u.Columns, "t")))
	}
	if len(extra) == 0 {
		b.WriteString("});\n")
		return
	}
	b.WriteString("}, (t) => ({\n")
	for i, e := range extra {
		fmt.Fprintf(b, "  c%d: %s,\n", i, e)
	}
	b.WriteString("}));\n")
}

// column is the builder call of one column, without key constraints.
func (d *drizzle) column(c *schema.SchemaColumn) string {
	name := jsString(c.Name)
	var expr string
	isInt := false
	if e := d.m.enumFor(c); e != nil {
		if v, ok := d.enumVar[e.Schema+"."+e.Name]; ok {
			expr = v + "(" + name + ")"
		} else {
			expr = fmt.Sprintf("pgType(%s)(%s)", jsString(c.UdtName), name)
		}
	} else {
		switch c.UdtName {
		case "int2":
			expr, isInt = "smallint("+name+")", true
		case "int4":
			expr, isInt = "integer("+name+")", true
		case "int8":
			expr, isInt = "bigint("+name+", { mode: \"number\" })", true
		case "float4":
			expr = "real(" + name + ")"
		case "float8":
			expr = "doublePrecision(" + name + ")"
		case "numeric":
			expr = "numeric(" + name + ")"
		case "bool":
			expr = "boolean(" + name + ")"
		case "text", "name":
			expr = "text(" + name + ")"
		case "varchar":
			expr = "varchar(" + name + ")"
		case "bpchar":
			expr = "char(" + name + ")"
		case "uuid":
			expr = "uuid(" + name + ")"
		case "json":
			expr = "json(" + name + ")"
		case "jsonb":
			expr = "jsonb(" + name + ")"
		case "date":
			expr = "date(" + name + ")"
		case "timestamp":
			expr = "timestamp(" + name + ")"
		case "timestamptz":
			expr = "timestamp(" + name + ", { withTimezone: true })"
		case "time":
			expr = "time(" + name + ")"
		case "interval":
			expr = "interval(" + name + ")"
		case "inet":
			expr = "inet(" + name + ")"
		case "bytea":
			expr = "bytea(" + name + ")"
		default:
			expr = fmt.Sprintf("pgType(%s)(%s)", jsString(c.UdtName), name)
		}
	}
	if c.IsArray {
		expr += strings.Repeat(".array()", c.ArrayDims)
	}
	switch {
	case c.Identity == "always" && isInt && !c.IsArray:
		expr += ".generatedAlwaysAsIdentity()"
	case c.Identity == "by_default" && isInt && !c.IsArray:
		expr += ".generatedByDefaultAsIdentity()"
	case c.IsGenerated && c.Expression != "":
		expr += ".generatedAlwaysAs(sql.raw(" + jsString(c.Expression) + "))"
	case c.Default != "":
		expr += ".default(sql.raw(" + jsString(c.Default) + "))"
	}
	return expr
}
