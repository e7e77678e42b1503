// Package schema describes a tenant database's user schemas as the
// deterministic DatabaseSchema document of API.md §4.12, and diffs two such
// documents. It reads catalogues only, through a session the caller opened
// with the tenant's own rights.
package schema

// DatabaseSchema is the whole description of one database.
type DatabaseSchema struct {
	DatabaseName    string            `json:"database_name"`
	PostgresVersion string            `json:"postgres_version"`
	Extensions      []SchemaExtension `json:"extensions"`
	Schemas         []SchemaNamespace `json:"schemas"`
}

// SchemaExtension is an installed extension.
type SchemaExtension struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// SchemaNamespace is one user schema.
type SchemaNamespace struct {
	Name   string        `json:"name"`
	Tables []SchemaTable `json:"tables"`
	Enums  []SchemaEnum  `json:"enums"`
}

// SchemaEnum is an enum type; Values are in sort order.
type SchemaEnum struct {
	Name    string   `json:"name"`
	Values  []string `json:"values"`
	Comment string   `json:"comment,omitempty"`
}

// Table kinds.
const (
	KindTable            = "table"
	KindPartitionedTable = "partitioned_table"
	KindView             = "view"
	KindMaterializedView = "materialized_view"
	KindForeignTable     = "foreign_table"
)

// SchemaTable is a table, view, materialized view or foreign table.
type SchemaTable struct {
	Name              string                   `json:"name"`
	Kind              string                   `json:"kind" enum:"table,partitioned_table,view,materialized_view,foreign_table"`
	Columns           []SchemaColumn           `json:"columns"`
	PrimaryKey        []string                 `json:"primary_key"`
	ForeignKeys       []SchemaForeignKey       `json:"foreign_keys"`
	UniqueConstraints []SchemaUniqueConstraint `json:"unique_constraints"`
	Comment           string                   `json:"comment,omitempty"`
}

// IsView reports whether rows cannot be written through the relation directly.
func (t *SchemaTable) IsView() bool { return t.Kind == KindView || t.Kind == KindMaterializedView }

// SchemaColumn is one column of a table or view.
type SchemaColumn struct {
	Name        string `json:"name"`
	Position    int    `json:"position" doc:"1-based ordinal"`
	DataType    string `json:"data_type" doc:"SQL type as format_type prints it"`
	UdtName     string `json:"udt_name" doc:"underlying type name (the element type for arrays, the base type for domains)"`
	UdtSchema   string `json:"udt_schema"`
	IsNullable  bool   `json:"is_nullable"`
	IsArray     bool   `json:"is_array"`
	ArrayDims   int    `json:"array_dims,omitempty"`
	IsEnum      bool   `json:"is_enum"`
	IsGenerated bool   `json:"is_generated"`
	Generated   string `json:"generated,omitempty" enum:"stored,virtual"`
	Identity    string `json:"identity,omitempty" enum:"always,by_default"`
	Default     string `json:"default,omitempty"`
	Comment     string `json:"comment,omitempty"`
	// Expression is a generated column's expression: not in the document
	// (§4.12 has no field for it), but ORM schemas need it.
	Expression string `json:"-"`
}

// SchemaForeignKey is a foreign-key constraint.
type SchemaForeignKey struct {
	Name              string   `json:"name"`
	Columns           []string `json:"columns"`
	ReferencedSchema  string   `json:"referenced_schema"`
	ReferencedTable   string   `json:"referenced_table"`
	ReferencedColumns []string `json:"referenced_columns"`
	OnUpdate          string   `json:"on_update" enum:"NO ACTION,RESTRICT,CASCADE,SET NULL,SET DEFAULT"`
	OnDelete          string   `json:"on_delete" enum:"NO ACTION,RESTRICT,CASCADE,SET NULL,SET DEFAULT"`
}

// SchemaUniqueConstraint is a UNIQUE constraint.
type SchemaUniqueConstraint struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
}

// HasDefault reports whether an INSERT may leave the column out.
func (c *SchemaColumn) HasDefault() bool {
	return c.Default != "" || c.Identity != "" || c.IsGenerated
}
