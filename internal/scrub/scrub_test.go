package scrub

import (
	"strings"
	"sync"
	"testing"
)

func TestPatterns(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// URLs
		{"url", "connecting to postgres://app:s3cr3t@db.internal:5432/app failed",
			"connecting to postgres://app:***@db.internal:5432/app failed"},
		{"url postgresql scheme", "postgresql://u:p@h/d", "postgresql://u:***@h/d"},
		{"url no path", `parse "postgres://u:pw@h": invalid port`, `parse "postgres://u:***@h": invalid port`},
		{"url empty user", "redis://:hunter2@cache:6379", "redis://:***@cache:6379"},
		{"url empty password", "postgres://u:@h/db", "postgres://u:***@h/db"},
		{"url percent-encoded password", "postgres://u:p%40ss%2Fw@h/db", "postgres://u:***@h/db"},
		{"url raw @ in password", "postgres://u:p@ss@h/db", "postgres://u:***@h/db"},
		{"url scheme with plus", "git+ssh://u:tok@github.com/x", "git+ssh://u:***@github.com/x"},
		{"two urls", "a://u:x@h b://v:y@i", "a://u:***@h b://v:***@i"},
		{"url without password kept", "postgres://app@db/app", "postgres://app@db/app"},
		{"url with port kept", "http://example.com:8080/path?q=1", "http://example.com:8080/path?q=1"},
		{"url plain kept", "see https://capydb.dev/docs for help", "see https://capydb.dev/docs for help"},
		{"url already scrubbed", "postgres://u:***@h/db", "postgres://u:***@h/db"},
		{"url password query param", "postgres://h/db?user=u&password=secret", "postgres://h/db?user=u&password=***"},

		// environment style
		{"pgpassword", "PGPASSWORD=hunter22 pg_dump -h x", "PGPASSWORD=*** pg_dump -h x"},
		{"pgpassword single quoted", "PGPASSWORD='a b c' psql", "PGPASSWORD=*** psql"},
		{"pgpassword double quoted", `PGPASSWORD="a \"b\" c" psql`, "PGPASSWORD=*** psql"},
		{"pgpassword end of line", "env: PGPASSWORD=x\nnext line", "env: PGPASSWORD=***\nnext line"},
		{"pgpassword unterminated quote", "PGPASSWORD='abc def\nnext", "PGPASSWORD=***\nnext"},
		{"other password vars", "POSTGRES_PASSWORD=abc DB_PASSWD=def", "POSTGRES_PASSWORD=*** DB_PASSWD=***"},

		// libpq keyword form
		{"libpq bare", "host=db port=5432 password=hunter22 dbname=app", "host=db port=5432 password=*** dbname=app"},
		{"libpq quoted", "host=db password='pa ss\\'word' user=x", "host=db password=*** user=x"},
		{"libpq spaces around =", "host=db password = 'x y' user=z", "host=db password = *** user=z"},
		{"libpq upper case", "PASSWORD=abc", "PASSWORD=***"},
		{"libpq escaped space", `password=a\ b user=x`, "password=*** user=x"},
		{"libpq quote inside bare value", `password=ab'cd user=x`, "password=*** user=x"},
		{"libpq idempotent", "password=***", "password=***"},

		// JSON
		{"json", `{"user":"u","password":"p\"w","db":"d"}`, `{"user":"u","password":"***","db":"d"}`},
		{"json spaced", `{"db_password" : "x"}`, `{"db_password" : "***"}`},

		// SQL
		{"sql alter role", "ALTER ROLE app PASSWORD 'abc';", "ALTER ROLE app PASSWORD '***';"},
		{"sql lower case", "alter role app with password 'abc'", "alter role app with password '***'"},
		{"sql encrypted", "CREATE ROLE a ENCRYPTED PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy' LOGIN",
			"CREATE ROLE a ENCRYPTED PASSWORD '***' LOGIN"},
		{"sql doubled quote", "ALTER USER x PASSWORD 'it''s secret' VALID UNTIL 'infinity'",
			"ALTER USER x PASSWORD '***' VALID UNTIL 'infinity'"},
		{"sql E string", `ALTER ROLE x PASSWORD E'a\'b';`, "ALTER ROLE x PASSWORD '***';"},
		{"sql dollar quoted", "ALTER ROLE x PASSWORD $$a'b$$;", "ALTER ROLE x PASSWORD '***';"},
		{"sql unterminated", "LINE 1: ALTER ROLE x PASSWORD 'abc\nHINT: x", "LINE 1: ALTER ROLE x PASSWORD '***'\nHINT: x"},
		{"sql multiline statement", "ALTER ROLE x\n  PASSWORD 'abc'", "ALTER ROLE x\n  PASSWORD '***'"},
		{"sql password null kept", "ALTER ROLE x PASSWORD NULL", "ALTER ROLE x PASSWORD NULL"},
		{"auth failure message kept", `FATAL:  password authentication failed for user "app"`,
			`FATAL:  password authentication failed for user "app"`},

		// SCRAM
		{"scram bare", "rolpassword | SCRAM-SHA-256$4096:q2Vj+/=$AbC/1+=:XyZ=\n", "rolpassword | ***\n"},

		// tokens
		{"api key", "Authorization: capy_live_AbC123xyz", "Authorization: ***"},
		{"webhook secret", "secret=whsec_9f8e7d", "secret=***"},
		{"approval token", "token ap_abcdefghijABCDEFGHIJ0123 ok", "token *** ok"},
		{"poll token", "/poll/clp_abcdefghijABCDEFGHIJ", "/poll/***"},
		{"claim token", "(eph_0123456789abcdefghijKLM)", "(***)"},
		{"approval too short kept", "ap_short", "ap_short"},
		{"ap inside word kept", "snap_abcdefghijABCDEFGHIJ0123", "snap_abcdefghijABCDEFGHIJ0123"},
		{"clp inside word kept", "xclp_abcdefghijABCDEFGHIJ", "xclp_abcdefghijABCDEFGHIJ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, s := range map[string]*Scrubber{"Default": Default(), "New": New(), "nil": nil, "zero": {}} {
				if got := s.String(tt.in); got != tt.want {
					t.Fatalf("%s.String(%q)\n got %q\nwant %q", name, tt.in, got, tt.want)
				}
			}
			// Scrubbing is idempotent.
			if got := Default().String(tt.want); got != tt.want {
				t.Fatalf("second pass changed %q to %q", tt.want, got)
			}
		})
	}
}

func TestOrdinaryTextUntouched(t *testing.T) {
	texts := []string{
		"",
		"pg_dump: dumping contents of table \"public.users\"",
		"pg_restore: error: could not execute query: ERROR:  relation \"x\" already exists",
		"Command was: CREATE TABLE public.t (id integer, password_hash text);",
		"SELECT passwd FROM pg_shadow; -- needs superuser",
		"the password is stored encrypted",
		"email: user@example.com, host: db:5432",
		"ssh user@host:/path",
		"time=12:30:45 level=info msg=\"restore done\" duration=3.2s",
		"C:\\Program Files\\PostgreSQL\\17\\bin",
		"a snapshot_id=snap_20240101 capacity=10GB",
		"unicode ✓ 日本語 text",
		strings.Repeat("x", 10000),
	}
	s := New("long-enough-secret")
	for _, text := range texts {
		if got := s.String(text); got != text {
			t.Errorf("String(%q) = %q, want unchanged", text, got)
		}
	}
}

func TestKnownSecrets(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"single", []string{"hunter22"}, "the value hunter22 leaked", "the value *** leaked"},
		{"every occurrence", []string{"hunter22"}, "hunter22 hunter22hunter22", "*** ******"},
		{"too short ignored", []string{"abc12"}, "abc12 stays", "abc12 stays"},
		{"empty ignored", []string{""}, "nothing", "nothing"},
		{"exactly min length", []string{"abcdef"}, "x abcdef y", "x *** y"},
		{"longest first", []string{"secret", "secret-extended"}, "secret-extended and secret", "*** and ***"},
		{"longest first reversed", []string{"secret-extended", "secret"}, "secret-extended and secret", "*** and ***"},
		{"query escaped", []string{"p@ss w/rd"}, "q=p%40ss+w%2Frd&x=1", "q=***&x=1"},
		{"path escaped", []string{"p@ss w/rd"}, "/x/p@ss%20w%2Frd/y", "/x/***/y"},
		{"userinfo escaped", []string{"p@ss w/rd"}, "error for u:p%40ss%20w%2Frd!", "error for u:***!"},
		{"special regexp chars", []string{"a.b*c(d)"}, "a.b*c(d) axbxcxdx", "*** axbxcxdx"},
		{"multiline secret", []string{"line1\nline2"}, "x line1\nline2 y", "x *** y"},
		{"duplicates", []string{"dupdup", "dupdup"}, "dupdup", "***"},
		{"secret and pattern", []string{"hunter22"}, "postgres://u:hunter22@h echo hunter22", "postgres://u:***@h echo ***"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := New(tt.secrets...).String(tt.in); got != tt.want {
				t.Fatalf("New.String(%q) = %q, want %q", tt.in, got, tt.want)
			}
			s := Default()
			s.Add(tt.secrets...)
			if got := s.String(tt.in); got != tt.want {
				t.Fatalf("Add+String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAddLater(t *testing.T) {
	s := New("first-secret")
	if got := s.String("second-secret"); got != "second-secret" {
		t.Fatalf("got %q before Add", got)
	}
	s.Add("second-secret")
	if got := s.String("first-secret second-secret"); got != "*** ***" {
		t.Fatalf("got %q after Add", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			sec := "concurrent-secret-" + string(rune('a'+i))
			s.Add(sec)
			for range 100 {
				if got := s.String("x " + sec + " y"); got != "x *** y" {
					t.Errorf("got %q", got)
					return
				}
			}
		})
	}
	wg.Wait()
}
