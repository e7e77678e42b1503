package typegen

import (
	"fmt"
	"strings"

	"github.com/capydb/capydb/internal/schema"
)

const tsJSON = "export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[];\n"

// tsScalar is the TypeScript type of one value of c (no array, no null).
// enumType names an enum's type in the current style.
func tsScalar(m *model, c *schema.SchemaColumn, numericAsString bool, enumType func(*enumRef) string) string {
	if e := m.enumFor(c); e != nil {
		return enumType(e)
	}
	switch kindOf(c.UdtName) {
	case kInt, kBigInt, kFloat:
		return "number"
	case kNumeric:
		if numericAsString {
			return "string"
		}
		return "number"
	case kBool:
		return "boolean"
	case kJSON:
		return "Json"
	case kUnknown:
		return "unknown"
	}
	return "string"
}

func tsType(m *model, c *schema.SchemaColumn, numericAsString bool, enumType func(*enumRef) string) string {
	t := tsScalar(m, c, numericAsString, enumType)
	if c.IsArray {
		if strings.Contains(t, "|") {
			t = "(" + t + ")"
		}
		t += strings.Repeat("[]", c.ArrayDims)
	}
	if c.IsNullable {
		t += " | null"
	}
	return t
}

func tsUnion(values []string) string {
	if len(values) == 0 {
		return "never"
	}
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = jsString(v)
	}
	return strings.Join(q, " | ")
}

// typeNames gives every table and enum a unique TypeScript/Go type name:
// the PascalCase name, prefixed with the schema outside public. Tables
// also reserve their Insert and Update names.
func typeNames(m *model, reserved ...string) (tables map[*schema.SchemaTable]string, enums map[*schema.SchemaEnum]string) {
	n := namer{}
	for _, r := range reserved {
		n[r] = true
	}
	base := func(schemaName, name string) string {
		if schemaName == "public" {
			return pascal(name)
		}
		return pascal(schemaName) + pascal(name)
	}
	enums = map[*schema.SchemaEnum]string{}
	for _, e := range m.enums {
		enums[e.SchemaEnum] = n.get(base(e.Schema, e.Name))
	}
	tables = map[*schema.SchemaTable]string{}
	for _, t := range m.tables {
		b := base(t.Schema, t.Name)
		name := b
		for i := 2; n[name] || n[name+"Insert"] || n[name+"Update"]; i++ {
			name = fmt.Sprintf("%s%d", b, i)
		}
		n[name], n[name+"Insert"], n[name+"Update"] = true, true, true
		tables[t.SchemaTable] = name
	}
	return tables, enums
}

// capydbTS is plain interfaces: a row type per table or view, and Insert
// and Update types per table.
func capydbTS(m *model) string {
	var b strings.Builder
	b.WriteString("// " + header(m.s) + "\n\n")
	b.WriteString(tsJSON)
	tables, enums := typeNames(m, "Json")
	enumType := func(e *enumRef) string { return enums[e.SchemaEnum] }
	for _, e := range m.enums {
		b.WriteString("\n" + comment("//", describe(qualified(e.Schema, e.Name), e.Comment)))
		fmt.Fprintf(&b, "export type %s = %s;\n", enums[e.SchemaEnum], tsUnion(e.Values))
	}
	for _, t := range m.tables {
		name := tables[t.SchemaTable]
		b.WriteString("\n" + comment("//", describe(qualified(t.Schema, t.Name)+" ("+t.Kind+")", t.Comment)))
		fmt.Fprintf(&b, "export interface %s {\n", name)
		for _, c := range t.Columns {
			b.WriteString(comment("  //", c.Comment))
			fmt.Fprintf(&b, "  %s: %s;\n", tsKey(c.Name), tsType(m, &c, true, enumType))
		}
		b.WriteString("}\n")
		if t.IsView() || t.Kind == schema.KindForeignTable {
			continue
		}
		fmt.Fprintf(&b, "export interface %sInsert {\n", name)
		for _, c := range t.Columns {
			if !insertable(&c) {
				continue
			}
			opt := ""
			if optionalOnInsert(&c) {
				opt = "?"
			}
			fmt.Fprintf(&b, "  %s%s: %s;\n", tsKey(c.Name), opt, tsType(m, &c, true, enumType))
		}
		b.WriteString("}\n")
		fmt.Fprintf(&b, "export type %sUpdate = Partial<%sInsert>;\n", name, name)
	}
	return b.String()
}

// supabaseTS is the Database type supabase-js's createClient<Database>
// expects: per schema Tables (Row, Insert, Update, Relationships), Views,
// Functions, Enums and CompositeTypes.
func supabaseTS(m *model) string {
	var b strings.Builder
	b.WriteString("// " + header(m.s) + "\n\n")
	b.WriteString(tsJSON + "\nexport type Database = {\n")
	for _, ns := range m.s.Schemas {
		enumType := func(e *enumRef) string {
			return fmt.Sprintf("Database[%s][\"Enums\"][%s]", jsString(e.Schema), jsString(e.Name))
		}
		fmt.Fprintf(&b, "  %s: {\n", tsKey(ns.Name))
		for _, section := range []string{"Tables", "Views"} {
			fmt.Fprintf(&b, "    %s: {\n", section)
			n := 0
			for i := range ns.Tables {
				t := &ns.Tables[i]
				if t.IsView() != (section == "Views") {
					continue
				}
				n++
				supabaseRelation(&b, m, ns.Name, t, enumType)
			}
			if n == 0 {
				b.WriteString("      [_ in never]: never\n")
			}
			b.WriteString("    }\n")
		}
		b.WriteString("    Functions: {\n      [_ in never]: never\n    }\n")
		b.WriteString("    Enums: {\n")
		for _, e := range ns.Enums {
			fmt.Fprintf(&b, "      %s: %s\n", tsKey(e.Name), tsUnion(e.Values))
		}
		if len(ns.Enums) == 0 {
			b.WriteString("      [_ in never]: never\n")
		}
		b.WriteString("    }\n    CompositeTypes: {\n      [_ in never]: never\n    }\n  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func supabaseRelation(b *strings.Builder, m *model, schemaName string, t *schema.SchemaTable, enumType func(*enumRef) string) {
	b.WriteString(comment("      //", t.Comment))
	fmt.Fprintf(b, "      %s: {\n        Row: {\n", tsKey(t.Name))
	for _, c := range t.Columns {
		fmt.Fprintf(b, "          %s: %s\n", tsKey(c.Name), tsType(m, &c, false, enumType))
	}
	b.WriteString("        }\n")
	if !t.IsView() {
		for _, section := range []string{"Insert", "Update"} {
			fmt.Fprintf(b, "        %s: {\n", section)
			for _, c := range t.Columns {
				typ := tsType(m, &c, false, enumType)
				opt := "?"
				switch {
				case !insertable(&c):
					typ = "never"
				case section == "Insert" && !optionalOnInsert(&c):
					opt = ""
				}
				fmt.Fprintf(b, "          %s%s: %s\n", tsKey(c.Name), opt, typ)
			}
			b.WriteString("        }\n")
		}
	}
	b.WriteString("        Relationships: [")
	for i, fk := range t.ForeignKeys {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(b, "\n          {\n            foreignKeyName: %s\n            columns: [%s]\n            isOneToOne: %t\n"+
			"            referencedRelation: %s\n            referencedColumns: [%s]\n          }",
			jsString(fk.Name), jsList(fk.Columns), oneToOne(t, fk.Columns), jsString(fk.ReferencedTable), jsList(fk.ReferencedColumns))
	}
	if len(t.ForeignKeys) > 0 {
		b.WriteString("\n        ")
	}
	b.WriteString("]\n      }\n")
}

func jsList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = jsString(s)
	}
	return strings.Join(q, ", ")
}

// oneToOne: the foreign key's columns are the primary key or a unique
// constraint, so each row references a distinct row.
func oneToOne(t *schema.SchemaTable, cols []string) bool {
	same := func(a []string) bool { return strings.Join(a, "\x00") == strings.Join(cols, "\x00") }
	if same(t.PrimaryKey) {
		return true
	}
	for _, u := range t.UniqueConstraints {
		if same(u.Columns) {
			return true
		}
	}
	return false
}
