package cli

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// legacyServerEnv is the hand-kept table the derived names replaced; every
// one of these variables must keep working exactly as before.
var legacyServerEnv = map[string]string{
	"data-dir": "CAPYDB_DATA_DIR", "listen": "CAPYDB_LISTEN", "direct-port": "CAPYDB_DIRECT_PORT",
	"pooled-port": "CAPYDB_POOLED_PORT", "public-host": "CAPYDB_PUBLIC_HOST",
	"database-url": "CAPYDB_DATABASE_URL", "components": "CAPYDB_COMPONENTS", "workers": "CAPYDB_WORKERS",
	"embedded-cluster": "CAPYDB_EMBEDDED_CLUSTER", "log-format": "CAPYDB_LOG_FORMAT", "log-level": "CAPYDB_LOG_LEVEL",
	"webhooks-allow-insecure": "CAPYDB_WEBHOOKS_ALLOW_INSECURE", "webhooks-retry-base": "CAPYDB_WEBHOOKS_RETRY_BASE",
	"oidc-issuer": "CAPYDB_OIDC_ISSUER", "oidc-jwks-url": "CAPYDB_OIDC_JWKS_URL", "oidc-audience": "CAPYDB_OIDC_AUDIENCE",
	"trusted-proxies": "CAPYDB_TRUSTED_PROXIES", "rate-limit-api": "CAPYDB_RATE_LIMIT_API",
	"rate-limit-cli-login": "CAPYDB_RATE_LIMIT_CLI_LOGIN", "rate-limit-cli-poll": "CAPYDB_RATE_LIMIT_CLI_POLL",
	"rate-limit-failed-auth":  "CAPYDB_RATE_LIMIT_FAILED_AUTH",
	"preview-reaper-interval": "CAPYDB_PREVIEW_REAPER_INTERVAL", "clone-workers": "CAPYDB_CLONE_WORKERS",
	"backup-url": "CAPYDB_BACKUP_URL", "imports-allow-private": "CAPYDB_IMPORTS_ALLOW_PRIVATE",
	"backup-scheduler-interval": "CAPYDB_BACKUP_SCHEDULER_INTERVAL",
}

func findCommand(t *testing.T, path ...string) *cobra.Command {
	t.Helper()
	cmd, rest, err := newRoot().Find(path)
	if err != nil || len(rest) != 0 {
		t.Fatalf("command %v: %v %v", path, rest, err)
	}
	return cmd
}

// Every flag of `capydb server` has its CAPYDB_* variable, derived from the
// flag's name; the variables of before keep their names; the configuration
// page documents each one. Only --help and hidden --unsafe-* test switches
// have none.
func TestEveryServerFlagHasAnEnvironmentVariable(t *testing.T) {
	cmd := findCommand(t, "server")
	// Set every flag's derived variable to a value the flag accepts: the
	// flags applyEnv then reports explicit are the ones with a variable.
	cmd.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		v := f.DefValue
		if v == "" {
			v = "x"
		}
		t.Setenv(envName(f.Name), v)
	})
	withEnv, err := applyEnv(cmd)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	cmd.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		names = append(names, f.Name)
		switch {
		case f.Name == "help":
		case f.Hidden:
			if !strings.HasPrefix(f.Name, "unsafe-") {
				t.Errorf("hidden flag --%s is not an --unsafe-* test switch, so it needs a variable", f.Name)
			}
			if withEnv[f.Name] {
				t.Errorf("test switch --%s has an environment variable", f.Name)
			}
		case !withEnv[f.Name]:
			t.Errorf("--%s has no environment variable", f.Name)
		case !strings.Contains(string(doc), "`"+envName(f.Name)+"`"):
			t.Errorf("docs/configuration.md does not name %s (--%s)", envName(f.Name), f.Name)
		}
	})
	for flag, env := range legacyServerEnv {
		if !slices.Contains(names, flag) || !withEnv[flag] || envName(flag) != env {
			t.Errorf("--%s: variable %s no longer works (derived %s)", flag, env, envName(flag))
		}
	}
}

// The variable sets a flag not given on the command line; a given flag wins.
func TestApplyEnv(t *testing.T) {
	t.Setenv("CAPYDB_WEBHOOKS_RETRY_BASE", "7s")
	t.Setenv("CAPYDB_LISTEN", "127.0.0.1:9999")
	t.Setenv("CAPYDB_UNSAFE_NO_FSYNC", "true")
	cmd := findCommand(t, "server")
	if err := cmd.ParseFlags([]string{"--listen", "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	explicit, err := applyEnv(cmd)
	if err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{"webhooks-retry-base": "7s", "listen": "127.0.0.1:1", "unsafe-no-fsync": "false"} {
		if got := cmd.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}
	if !explicit["webhooks-retry-base"] || !explicit["listen"] || explicit["workers"] || explicit["unsafe-no-fsync"] {
		t.Errorf("explicit = %v", explicit)
	}

	t.Setenv("CAPYDB_NAME", "from-env")
	admin := findCommand(t, "admin", "create-key")
	if err := admin.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := applyEnv(admin, "data-dir", "database-url"); err != nil {
		t.Fatal(err)
	}
	if got := admin.Flags().Lookup("name").Value.String(); got != "operator key" {
		t.Errorf("admin create-key --name taken from the environment: %q", got)
	}
}
