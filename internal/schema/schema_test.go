package schema_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/schema"
	"github.com/capydb/capydb/internal/schema/schematest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

func fixture(t *testing.T) string {
	b, err := os.ReadFile("testdata/fixture.sql")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func introspect(t *testing.T, tn *schematest.Tenant) *schema.DatabaseSchema {
	t.Helper()
	s, err := schema.Introspect(context.Background(), tn.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func table(t *testing.T, s *schema.DatabaseSchema, ns, name string) *schema.SchemaTable {
	t.Helper()
	for _, n := range s.Schemas {
		if n.Name != ns {
			continue
		}
		for i := range n.Tables {
			if n.Tables[i].Name == name {
				return &n.Tables[i]
			}
		}
	}
	t.Fatalf("no table %s.%s", ns, name)
	return nil
}

func column(t *testing.T, tb *schema.SchemaTable, name string) schema.SchemaColumn {
	t.Helper()
	for _, c := range tb.Columns {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no column %s in %s", name, tb.Name)
	return schema.SchemaColumn{}
}

// TestIntrospectFixture: the fixture comes back with the exact shapes of
// API.md §4.12, extension objects left out, in deterministic order.
func TestIntrospectFixture(t *testing.T) {
	t.Parallel()
	tn := schematest.New(t, "pg_stat_statements", "hstore")
	tn.Exec(t, fixture(t))
	s := introspect(t, tn)

	if s.DatabaseName != tn.DB || !strings.HasPrefix(s.PostgresVersion, "1") || strings.Contains(s.PostgresVersion, " ") {
		t.Fatalf("header %q %q", s.DatabaseName, s.PostgresVersion)
	}
	var exts []string
	for _, e := range s.Extensions {
		exts = append(exts, e.Name)
	}
	if !slices.Equal(exts, []string{"hstore", "pg_stat_statements", "plpgsql"}) {
		t.Fatalf("extensions %v", exts)
	}
	var schemas []string
	for _, n := range s.Schemas {
		schemas = append(schemas, n.Name)
	}
	if !slices.Equal(schemas, []string{"billing", "public"}) {
		t.Fatalf("schemas %v", schemas)
	}
	pub := s.Schemas[1]
	var tables []string
	for _, tb := range pub.Tables {
		tables = append(tables, tb.Name+":"+tb.Kind)
	}
	// Byte order; no pg_stat_statements views (extension-owned), no partitions.
	want := []string{"UserProfile:table", "café:table", "events:partitioned_table", "order_lines:table",
		"order_totals:materialized_view", "orders:table", "paid_orders:view", "users:table"}
	if !slices.Equal(tables, want) {
		t.Fatalf("tables\n got %v\nwant %v", tables, want)
	}
	if len(pub.Enums) != 2 || pub.Enums[0].Name != "Mood" || pub.Enums[1].Name != "order_status" ||
		!slices.Equal(pub.Enums[1].Values, []string{"pending", "paid", "shipped", "class"}) || pub.Enums[1].Comment != "Where an order is" {
		t.Fatalf("enums %+v (hstore's type must not be listed either)", pub.Enums)
	}

	users := table(t, s, "public", "users")
	if users.Comment != "People who log in" || !slices.Equal(users.PrimaryKey, []string{"id"}) ||
		len(users.UniqueConstraints) != 1 || users.UniqueConstraints[0].Name != "users_email_key" {
		t.Fatalf("users %+v", users)
	}
	if c := column(t, users, "id"); c.Identity != "always" || c.IsNullable || c.Position != 1 || c.DataType != "bigint" || c.Default != "" {
		t.Fatalf("id %+v", c)
	}
	if c := column(t, users, "email"); c.Comment != "Unique login" || c.IsNullable {
		t.Fatalf("email %+v", c)
	}
	if c := column(t, users, "tags"); !c.IsArray || c.ArrayDims != 1 || c.UdtName != "text" || c.DataType != "text[]" || c.Default != "'{}'::text[]" {
		t.Fatalf("tags %+v", c)
	}
	if c := column(t, users, "matrix"); !c.IsArray || c.ArrayDims != 2 || c.UdtName != "int4" {
		t.Fatalf("matrix %+v", c)
	}
	if c := column(t, users, "mood"); !c.IsEnum || c.UdtName != "Mood" || c.UdtSchema != "public" || !c.IsNullable {
		t.Fatalf("mood %+v", c)
	}
	if c := column(t, users, "age"); c.DataType != "positive_int" || c.UdtName != "int4" || c.UdtSchema != "pg_catalog" {
		t.Fatalf("domain column %+v", c)
	}
	if c := column(t, users, "full_name"); !c.IsGenerated || c.Generated != "stored" || c.Default != "" {
		t.Fatalf("generated %+v", c)
	}
	if c := column(t, users, "LastName"); c.DataType != "character varying(80)" || c.UdtName != "varchar" {
		t.Fatalf("varchar %+v", c)
	}
	orders := table(t, s, "public", "orders")
	if !slices.Equal(orders.PrimaryKey, []string{"region", "id"}) || column(t, orders, "id").Identity != "by_default" {
		t.Fatalf("orders %+v", orders)
	}
	if c := column(t, orders, "statuses"); !c.IsArray || !c.IsEnum || c.UdtName != "order_status" {
		t.Fatalf("enum array %+v", c)
	}
	if fk := orders.ForeignKeys; len(fk) != 1 || fk[0].OnDelete != "CASCADE" || fk[0].OnUpdate != "NO ACTION" ||
		fk[0].ReferencedTable != "users" || !slices.Equal(fk[0].Columns, []string{"user_id"}) {
		t.Fatalf("orders fks %+v", fk)
	}
	lines := table(t, s, "public", "order_lines")
	if fk := lines.ForeignKeys; len(fk) != 1 || fk[0].Name != "order_lines_order_fkey" || fk[0].OnUpdate != "CASCADE" ||
		!slices.Equal(fk[0].Columns, []string{"region", "order_id"}) || !slices.Equal(fk[0].ReferencedColumns, []string{"region", "id"}) {
		t.Fatalf("composite fk %+v", fk)
	}
	if c := column(t, lines, "line"); !strings.HasPrefix(c.Default, "nextval(") {
		t.Fatalf("serial %+v", c)
	}
	view := table(t, s, "public", "paid_orders")
	if len(view.Columns) != 4 || view.Columns[3].Name != "email" || len(view.PrimaryKey) != 0 || view.PrimaryKey == nil {
		t.Fatalf("view %+v", view)
	}
	bill := table(t, s, "billing", "orders")
	if uc := bill.UniqueConstraints; len(uc) != 1 || !slices.Equal(uc[0].Columns, []string{"currency", "amount_cents"}) {
		t.Fatalf("billing unique %+v", uc)
	}
	cafe := table(t, s, "public", "café")
	if cafe.Columns[1].Name != "名前" || cafe.Columns[1].IsNullable {
		t.Fatalf("unicode %+v", cafe.Columns)
	}

	// Deterministic: the same document twice, and the same from a second
	// database loaded with the same schema.
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(introspect(t, tn))
	if string(a) != string(b) {
		t.Fatal("two introspections differ")
	}
	tn2 := schematest.New(t, "pg_stat_statements", "hstore")
	tn2.Exec(t, fixture(t))
	s2 := introspect(t, tn2)
	s2.DatabaseName = s.DatabaseName
	c, _ := json.Marshal(s2)
	if string(a) != string(c) {
		t.Fatalf("same schema, different documents:\n%s\n%s", a, c)
	}
	if d := schema.Compare(s, s2); len(d) != 0 {
		t.Fatalf("identical schemas differ: %+v", d)
	}
}

// TestCompare: every kind of change is reported once, with its direction.
func TestCompare(t *testing.T) {
	t.Parallel()
	base := schematest.New(t)
	base.Exec(t, fixture(t))
	target := schematest.New(t)
	target.Exec(t, fixture(t))
	target.Exec(t, `
		CREATE TABLE public.audit (id bigint PRIMARY KEY);
		DROP TABLE public."café";
		ALTER TABLE public.users ADD COLUMN nickname text;
		ALTER TABLE public.users DROP COLUMN small;
		ALTER TABLE public.users ALTER COLUMN ratio TYPE numeric;
		ALTER TABLE public.users ALTER COLUMN "firstName" SET NOT NULL;
		ALTER TABLE public.users ALTER COLUMN active SET DEFAULT false;
		ALTER TABLE public."UserProfile" DROP CONSTRAINT "UserProfile_userId_fkey";
		ALTER TABLE billing.orders DROP CONSTRAINT billing_orders_currency_amount_key;
		ALTER TABLE billing.orders ADD CONSTRAINT billing_orders_currency_amount_key UNIQUE (amount_cents, currency);
		ALTER TABLE public.order_lines DROP CONSTRAINT order_lines_pkey;
		ALTER TYPE public.order_status ADD VALUE 'refunded';
		CREATE TYPE public.color AS ENUM ('red');
		CREATE SCHEMA extra;`)
	d := schema.Compare(introspect(t, base), introspect(t, target))
	got := map[string]bool{}
	for _, x := range d {
		got[strings.Join([]string{x.Change, x.ObjectType, x.Object, x.Field, x.From, x.To}, "|")] = true
	}
	for _, w := range []string{
		"added|table|public.audit|||table",
		"removed|table|public.café||table|",
		"added|column|public.users.nickname|||text",
		"removed|column|public.users.small||smallint|",
		"changed|column|public.users.ratio|data_type|double precision|numeric",
		"changed|column|public.users.firstName|is_nullable|true|false",
		"changed|column|public.users.active|default|true|false",
		"removed|foreign_key|public.UserProfile.UserProfile_userId_fkey||(userId) REFERENCES public.users(id) ON UPDATE NO ACTION ON DELETE NO ACTION|",
		"changed|unique_constraint|billing.orders.billing_orders_currency_amount_key|columns|(currency, amount_cents)|(amount_cents, currency)",
		"removed|primary_key|public.order_lines||(region, order_id, line)|",
		"changed|enum|public.order_status|values|pending, paid, shipped, class|pending, paid, shipped, class, refunded",
		"added|enum|public.color|||",
		"added|schema|extra|||",
	} {
		if !got[w] {
			t.Errorf("missing %q", w)
		}
	}
	if len(d) != 13 {
		for _, x := range d {
			t.Logf("%+v", x)
		}
		t.Fatalf("%d differences, want 13", len(d))
	}
}

// BenchmarkIntrospectFixture measures one DatabaseSchema read of the
// fixture over an open tenant session (go test -bench Introspect -run '^$').
func BenchmarkIntrospectFixture(b *testing.B) {
	tn := schematest.New(b)
	sql, err := os.ReadFile("testdata/fixture.sql")
	if err != nil {
		b.Fatal(err)
	}
	tn.Exec(b, string(sql))
	conn := tn.Connect(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := schema.Introspect(context.Background(), conn); err != nil {
			b.Fatal(err)
		}
	}
}
