package typegen_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/nodetools"
	"github.com/capydb/capydb/internal/schema"
	"github.com/capydb/capydb/internal/schema/schematest"
	"github.com/capydb/capydb/internal/typegen"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// fixtureSchema loads the shared fixture (enums, arrays, nullable,
// generated and identity columns, composite keys, views, reserved words,
// mixed case, unicode) into a tenant database and reads it back.
func fixtureSchema(t *testing.T) *schema.DatabaseSchema {
	t.Helper()
	sql, err := os.ReadFile("../schema/testdata/fixture.sql")
	if err != nil {
		t.Fatal(err)
	}
	tn := schematest.New(t, "hstore")
	tn.Exec(t, string(sql)+`
		CREATE TABLE public.kv (id integer PRIMARY KEY, attrs hstore, "json" jsonb, "dict" text, "a-b" text, "a_b" text, "tick`+"`"+`" text, "quote""" text);
		CREATE TABLE public.none (parent integer REFERENCES public.none (id), id integer PRIMARY KEY);
		COMMENT ON COLUMN public.kv.attrs IS 'line one
line two */ `+"\u2028"+` alert("x") \r still a comment';`)
	s, err := schema.Introspect(context.Background(), tn.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func generate(t *testing.T, s *schema.DatabaseSchema, o typegen.Options) *typegen.GeneratedTypes {
	t.Helper()
	out, err := typegen.Generate(s, o)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func run(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// nodeTools makes sure tools/node/typegen has its node_modules (npm ci from
// the lock file) and returns the directory. npm missing is a failure.
func nodeTools(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../tools/node/typegen")
	if err != nil {
		t.Fatal(err)
	}
	if err := nodetools.Install(dir); err != nil {
		t.Fatal("compiling the generated TypeScript: ", err)
	}
	return dir
}

// tsc compiles files (name -> content) with tsc --strict next to the
// pinned node_modules.
func tsc(t *testing.T, files map[string]string) {
	t.Helper()
	tools := nodeTools(t)
	dir, err := os.MkdirTemp(tools, ".check-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	args := []string{"--strict", "--noEmit", "--target", "es2022", "--module", "esnext", "--moduleResolution", "bundler",
		"--skipLibCheck", "--noUnusedLocals", "false"}
	for name, content := range files {
		write(t, dir, name, content)
		args = append(args, name)
	}
	run(t, dir, nil, filepath.Join(tools, "node_modules", ".bin", "tsc"), args...)
}

func TestTypeScriptCapydbCompiles(t *testing.T) {
	t.Parallel()
	out := generate(t, fixtureSchema(t), typegen.Options{})
	if out.Language != "typescript" || out.Style != "capydb" || out.Filename != "database.types.ts" {
		t.Fatalf("%+v", out)
	}
	tsc(t, map[string]string{"database.types.ts": out.Content, "check.ts": `
import type { Users, UsersInsert, UsersUpdate, OrderStatus, Mood, OrderLines, BillingOrders, PaidOrders, Café, Kv } from "./database.types";
export const u: UsersInsert = { email: "a@b.c", tags: ["x"], mood: "so-so" };
// @ts-expect-error full_name is generated: not insertable
export const bad: UsersInsert = { email: "a", full_name: "x" };
// @ts-expect-error id is GENERATED ALWAYS AS IDENTITY
export const bad2: UsersInsert = { email: "a", id: 1 };
// @ts-expect-error email is required
export const bad3: UsersInsert = {};
export const s: OrderStatus = "class";
// @ts-expect-error not a value of the enum
export const s2: OrderStatus = "nope";
export const m: Mood = "ünïcode";
declare const row: Users;
export const n: number = row.id, tags: string[] = row.tags, first: string | null = row.firstName, bal: string = row.balance;
export const mx: number[][] | null = row.matrix;
declare const line: OrderLines;
export const tp: string | null = line.type, cl: string | null = line["class"], d: string | null = line["123start"];
declare const bo: BillingOrders;
export const cents: number = bo.amount_cents;
declare const po: PaidOrders;
export const e: string | null = po.email;
declare const cafe: Café;
export const name: string = cafe["名前"];
declare const kv: Kv;
export const attrs: unknown = kv.attrs;
export const upd: UsersUpdate = {};
`})
}

func TestTypeScriptSupabaseCompiles(t *testing.T) {
	t.Parallel()
	out := generate(t, fixtureSchema(t), typegen.Options{Language: "typescript", Style: "supabase"})
	if out.Style != "supabase" || !strings.Contains(out.Content, "export type Database = {") {
		t.Fatalf("%+v", out.Style)
	}
	tsc(t, map[string]string{"database.types.ts": out.Content, "check.ts": `
import { createClient } from "@supabase/supabase-js";
import type { Database } from "./database.types";
const client = createClient<Database>("http://localhost:54321", "anon-key");
export async function check(): Promise<void> {
  const { data } = await client.from("users").select("id, email, tags").eq("email", "a@b.c");
  const id: number | undefined = data?.[0]?.id;
  const tags: string[] | undefined = data?.[0]?.tags;
  await client.from("orders").insert({ region: "eu", user_id: 1, status: "paid" });
  // @ts-expect-error email is text
  await client.from("users").insert({ email: 1 });
  // @ts-expect-error full_name is generated
  await client.from("users").insert({ email: "x", full_name: "y" });
  // @ts-expect-error not a value of order_status
  await client.from("orders").insert({ region: "eu", user_id: 1, status: "lost" });
  const v = await client.from("paid_orders").select("email");
  const e: string | null | undefined = v.data?.[0]?.email;
  const billing = createClient<Database, "billing">("http://localhost:54321", "anon-key", { db: { schema: "billing" } });
  const b = await billing.from("orders").select("amount_cents");
  const cents: number | undefined = b.data?.[0]?.amount_cents;
  console.log(id, tags, e, cents);
}
`})
}

func TestZodCompiles(t *testing.T) {
	t.Parallel()
	out := generate(t, fixtureSchema(t), typegen.Options{Language: "zod"})
	if out.Filename != "database.zod.ts" || out.Style != "" {
		t.Fatalf("%+v", out)
	}
	tsc(t, map[string]string{"database.zod.ts": out.Content, "check.ts": `
import { UsersInsertSchema, OrderStatusSchema, OrderLinesSchema, type Users, type UsersInsert } from "./database.zod";
const parsed: UsersInsert = UsersInsertSchema.parse({ email: "a@b.c" });
export const email: string = parsed.email;
// @ts-expect-error full_name is generated: not in the insert type
export const fn: string = parsed.full_name;
export const st: "pending" | "paid" | "shipped" | "class" = OrderStatusSchema.parse("paid");
declare const u: Users;
export const id: number = u.id, tags: string[] = u.tags;
export const line = OrderLinesSchema.parse({});
export const cls: string | null = line.class;
`})
}

func TestDrizzleCompiles(t *testing.T) {
	t.Parallel()
	out := generate(t, fixtureSchema(t), typegen.Options{Language: "drizzle"})
	if out.Filename != "schema.ts" {
		t.Fatalf("%+v", out)
	}
	tsc(t, map[string]string{"schema.ts": out.Content, "check.ts": `
import { users, orders, orderLines, billingOrders, paidOrders, orderStatusEnum, none } from "./schema";
type U = typeof users.$inferSelect;
type UI = typeof users.$inferInsert;
declare const u: U;
export const id: number = u.id, email: string = u.email, first: string | null = u.firstName;
export const ins: UI = { email: "x" };
// @ts-expect-error unknown column
export const bad: UI = { email: "x", nope: 1 };
declare const o: typeof orders.$inferSelect;
export const status: "pending" | "paid" | "shipped" | "class" = o.status;
declare const ol: typeof orderLines.$inferSelect;
export const region: string = ol.region;
declare const bo: typeof billingOrders.$inferSelect;
export const cents: number = bo.amount_cents;
export const view = paidOrders;
export const values: string[] = orderStatusEnum.enumValues;
declare const nn: typeof none.$inferSelect;
export const parent: number | null = nn.parent;
`})
}

func TestGoCompiles(t *testing.T) {
	t.Parallel()
	out := generate(t, fixtureSchema(t), typegen.Options{Language: "go", Package: "models"})
	if out.Filename != "db.go" || !strings.Contains(out.Content, "package models\n") {
		t.Fatalf("%+v", out.Filename)
	}
	dir := t.TempDir()
	write(t, dir, "go.mod", "module example.com/check\n\ngo 1.21\n")
	write(t, dir, "db.go", out.Content)
	write(t, dir, "check.go", `package models

var _ = Users{ID: 1, Email: "x", FirstName: nil, Tags: []string{"a"}, Matrix: [][]int32{{1}}}
var _ OrderStatus = OrderStatusClass
var _ Mood = MoodSoSo
var _ string = UsersTable + UsersColumnFirstName
var _ = OrderLines{Type: nil, Default: nil, Class: nil, Import: nil, Func: nil, Package: nil, X123start: nil}
var _ = BillingOrders{AmountCents: 1}
var _ = PaidOrders{Email: nil}
var _ = UserProfile{DisplayName: "a", DisplayName2: nil}
var _ = Café{X名前: "x", Naïve: nil}
var _ = Kv{AB: nil, AB2: nil, JSON: nil, Tick: nil, Quote: nil}
var _ = None{Parent: nil, ID: 1}
`)
	env := []string{"GOFLAGS=-mod=mod", "GOWORK=off"}
	run(t, dir, env, "go", "build", "./...")
	// The exact column names survive in the tags, backquote included.
	write(t, dir, "tags_test.go", `package models

import (
	"reflect"
	"testing"
)

func TestTags(t *testing.T) {
	f, _ := reflect.TypeOf(Kv{}).FieldByName("Tick")
	q, _ := reflect.TypeOf(Kv{}).FieldByName("Quote")
	n, _ := reflect.TypeOf(Café{}).FieldByName("X名前")
	if f.Tag.Get("json") != "tick`+"`"+`" || q.Tag.Get("db") != "quote\"" || n.Tag.Get("json") != "名前" {
		t.Fatalf("tags %q %q %q", f.Tag, q.Tag, n.Tag)
	}
}
`)
	run(t, dir, env, "go", "vet", "./...")
	run(t, dir, env, "go", "test", "./...")
}

func TestPythonCompiles(t *testing.T) {
	t.Parallel()
	s := fixtureSchema(t)
	mypy, err := exec.LookPath("mypy")
	if err != nil {
		t.Fatal("mypy is needed to check the generated Python (scripts/ensure-deps.sh installs Debian's mypy)")
	}
	for _, style := range []string{"dataclass", "pydantic"} {
		t.Run(style, func(t *testing.T) {
			out := generate(t, s, typegen.Options{Language: "python", Style: style})
			if out.Filename != "models.py" || out.Style != style {
				t.Fatalf("%+v", out)
			}
			dir := t.TempDir()
			write(t, dir, "models.py", out.Content)
			check := `from typing import Optional
from models import Users, OrderLines, OrderStatus, BillingOrders, Kv

s: OrderStatus = "class"


def f(u: Users, line: OrderLines, b: BillingOrders, kv: Kv) -> None:
    a: int = u.id
    tags: list[str] = u.tags
    first: Optional[str] = u.firstName
    c: Optional[str] = line.class_
    n: Optional[str] = line.None_
    d: Optional[str] = line.f123start
    cents: int = b.amount_cents
    j: Optional[str] = kv.dict_ if ` + "`" + `PYDANTIC` + "`" + ` else kv.dict
    print(a, tags, first, c, n, d, cents, j)
`
			if style == "pydantic" {
				check = strings.Replace(check, "kv.dict_ if `PYDANTIC` else kv.dict", "kv.dict_", 1)
				check += `

row = OrderLines.parse_obj({"region": "eu", "order_id": 1, "line": 1, "type": None, "default": None, "class": "c",
    "import": None, "from": None, "package": None, "interface": None, "func": None, "None": None, "select": None,
    "123start": None})
assert row.class_ == "c"
`
			} else {
				check = strings.Replace(check, "kv.dict_ if `PYDANTIC` else kv.dict", "kv.dict", 1)
			}
			write(t, dir, "check.py", check)
			run(t, dir, nil, "/usr/bin/python3", "-m", "py_compile", "models.py", "check.py")
			run(t, dir, nil, mypy, "--strict", "--no-incremental", "models.py", "check.py")
			run(t, dir, nil, "/usr/bin/python3", "check.py")
		})
	}
}

func TestInvalidCombinations(t *testing.T) {
	t.Parallel()
	for _, o := range []typegen.Options{
		{Language: "rust"}, {Language: "go", Style: "capydb"}, {Language: "typescript", Style: "pydantic"},
		{Language: "python", Style: "supabase"}, {Language: "zod", Style: "capydb"}, {Language: "typescript", Package: "db"},
		{Language: "go", Package: "Bad"}, {Language: "go", Package: "func"}, {Language: "go", Package: "a-b"},
	} {
		_, err := typegen.Normalize(o)
		var inv *typegen.InvalidError
		if !errors.As(err, &inv) || inv.Msg == "" {
			t.Errorf("%+v: %v", o, err)
		}
	}
	for _, c := range []struct{ in, want typegen.Options }{
		{typegen.Options{}, typegen.Options{Language: "typescript", Style: "capydb"}},
		{typegen.Options{Language: "python"}, typegen.Options{Language: "python", Style: "dataclass"}},
		{typegen.Options{Language: "go"}, typegen.Options{Language: "go", Package: "db"}},
		{typegen.Options{Language: "drizzle"}, typegen.Options{Language: "drizzle"}},
	} {
		if got, err := typegen.Normalize(c.in); err != nil || got != c.want {
			t.Errorf("%+v: %+v %v", c.in, got, err)
		}
	}
}
