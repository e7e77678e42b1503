// Package typegen renders a schema.DatabaseSchema as source code for an
// application: TypeScript (capydb or supabase-js style), zod, drizzle, Go
// and Python (dataclass or pydantic). GeneratedTypes is deterministic (the input
// order) so it can be committed; every flavour is compiled in the tests.
package typegen

import (
	"fmt"
	"slices"
	"strings"

	"github.com/capydb/capydb/internal/schema"
)

// Options choose the output.
type Options struct {
	Language string // typescript (default), zod, drizzle, go, python
	Style    string // typescript: capydb (default), supabase; python: dataclass (default), pydantic
	Package  string // go only (default db)
}

// GeneratedTypes is the generated file of API.md §4.12.
type GeneratedTypes struct {
	Language string `json:"language"`
	Style    string `json:"style,omitempty"`
	Filename string `json:"filename"`
	Content  string `json:"content"`
}

// Languages lists what Generate accepts.
var Languages = []string{"typescript", "zod", "drizzle", "go", "python"}

var styles = map[string][]string{"typescript": {"capydb", "supabase"}, "python": {"dataclass", "pydantic"}}

var filenames = map[string]string{"typescript": "database.types.ts", "zod": "database.zod.ts", "drizzle": "schema.ts",
	"go": "db.go", "python": "models.py"}

// InvalidError is a bad language, style or package: the caller's mistake.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalid(format string, a ...any) error { return &InvalidError{Msg: fmt.Sprintf(format, a...)} }

// Normalize applies defaults and refuses invalid combinations.
func Normalize(o Options) (Options, error) {
	if o.Language == "" {
		o.Language = "typescript"
	}
	if !slices.Contains(Languages, o.Language) {
		return o, invalid("language must be one of %s", strings.Join(Languages, ", "))
	}
	allowed := styles[o.Language]
	switch {
	case o.Style != "" && allowed == nil:
		return o, invalid("style is not allowed for language %s", o.Language)
	case o.Style == "" && allowed != nil:
		o.Style = allowed[0]
	case allowed != nil && !slices.Contains(allowed, o.Style):
		return o, invalid("style for %s must be %s", o.Language, strings.Join(allowed, " or "))
	}
	if o.Package != "" && o.Language != "go" {
		return o, invalid("package is only allowed for language go")
	}
	if o.Language == "go" {
		if o.Package == "" {
			o.Package = "db"
		}
		if !validGoPackage(o.Package) {
			return o, invalid("package must be a Go identifier of lower-case letters, digits and underscores, not a keyword")
		}
	}
	return o, nil
}

// Generate renders s.
func Generate(s *schema.DatabaseSchema, o Options) (*GeneratedTypes, error) {
	o, err := Normalize(o)
	if err != nil {
		return nil, err
	}
	m := newModel(s)
	var content string
	switch o.Language {
	case "typescript":
		if o.Style == "supabase" {
			content = supabaseTS(m)
		} else {
			content = capydbTS(m)
		}
	case "zod":
		content = zodTS(m)
	case "drizzle":
		content = drizzleTS(m)
	case "go":
		content = goSource(m, o.Package)
	case "python":
		content = pythonSource(m, o.Style == "pydantic")
	}
	return &GeneratedTypes{Language: o.Language, Style: o.Style, Filename: filenames[o.Language], Content: content}, nil
}

// model is the schema flattened for the generators, with lookups.
type model struct {
	s      *schema.DatabaseSchema
	tables []tableRef
	enums  []enumRef
	enumOf map[string]*enumRef // "schema.name"
}

type tableRef struct {
	Schema string
	*schema.SchemaTable
}

type enumRef struct {
	Schema string
	*schema.SchemaEnum
}

func newModel(s *schema.DatabaseSchema) *model {
	m := &model{s: s, enumOf: map[string]*enumRef{}}
	for i := range s.Schemas {
		ns := &s.Schemas[i]
		for j := range ns.Enums {
			m.enums = append(m.enums, enumRef{Schema: ns.Name, SchemaEnum: &ns.Enums[j]})
		}
		for j := range ns.Tables {
			m.tables = append(m.tables, tableRef{Schema: ns.Name, SchemaTable: &ns.Tables[j]})
		}
	}
	for i := range m.enums {
		m.enumOf[m.enums[i].Schema+"."+m.enums[i].Name] = &m.enums[i]
	}
	return m
}

func (m *model) enumFor(c *schema.SchemaColumn) *enumRef {
	if !c.IsEnum {
		return nil
	}
	return m.enumOf[c.UdtSchema+"."+c.UdtName]
}

// insertable reports whether an INSERT may name the column at all.
func insertable(c *schema.SchemaColumn) bool { return !c.IsGenerated && c.Identity != "always" }

// optionalOnInsert reports whether an INSERT may leave the column out.
func optionalOnInsert(c *schema.SchemaColumn) bool { return c.IsNullable || c.HasDefault() }

// qualified names an object the way generated comments show it.
func qualified(schemaName, name string) string { return schemaName + "." + name }

// scalar kinds shared by the generators.
const (
	kInt = iota
	kBigInt
	kFloat
	kNumeric
	kBool
	kString
	kJSON
	kBytes
	kDate
	kTimestamp
	kTimestamptz
	kTime
	kUUID
	kUnknown
)

func kindOf(udt string) int {
	switch udt {
	case "int2", "int4", "oid":
		return kInt
	case "int8":
		return kBigInt
	case "float4", "float8":
		return kFloat
	case "numeric", "money":
		return kNumeric
	case "bool":
		return kBool
	case "text", "varchar", "bpchar", "char", "name", "citext", "inet", "cidr", "macaddr", "macaddr8", "interval",
		"timetz", "bit", "varbit", "xml", "tsvector", "tsquery", "ltree":
		return kString
	case "json", "jsonb":
		return kJSON
	case "bytea":
		return kBytes
	case "date":
		return kDate
	case "timestamp":
		return kTimestamp
	case "timestamptz":
		return kTimestamptz
	case "time":
		return kTime
	case "uuid":
		return kUUID
	}
	return kUnknown
}

// describe is head, then ": " and the object's comment when it has one.
func describe(head, comment string) string {
	if comment == "" {
		return head
	}
	return head + ": " + comment
}

// header is the first comment of every file.
func header(s *schema.DatabaseSchema) string {
	return fmt.Sprintf("Generated by capydb from database %s (PostgreSQL %s). Do not edit by hand.", s.DatabaseName, s.PostgresVersion)
}
