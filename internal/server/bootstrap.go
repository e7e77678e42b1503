package server

// Start-up chores on the control database: the default organization and its
// first admin key, the control database itself, and finding it for operator
// commands.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/store"
)

// bootstrap creates the default organization and its first admin key once.
func (s *Server) bootstrap(ctx context.Context) error {
	return s.store.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('capydb.bootstrap'))`); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM organizations`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		org := &store.Organization{ID: ids.New("org_"), Name: "Default", Slug: "default", BillingPlan: "business"}
		if err := store.InsertOrganization(ctx, tx, org); err != nil {
			return err
		}
		plain, k, err := auth.MintKey(ctx, tx, org.ID, "bootstrap admin", []string{auth.ScopeAll}, "api")
		if err != nil {
			return err
		}
		if err := writeSecretFile(filepath.Join(s.cfg.DataDir, BootstrapKeyFile), plain+"\n"); err != nil {
			return err
		}
		s.BootstrapKey = plain
		// The plaintext never goes to the log (logs are shipped and kept): the
		// caller prints it once to the terminal, and the 0600 file keeps it.
		s.log.Info("created organization default and its first admin API key",
			"organization_id", org.ID, "api_key_id", k.ID, "key_file", filepath.Join(s.cfg.DataDir, BootstrapKeyFile))
		return nil
	})
}

// ensureDatabase creates a database on a cluster if it is missing.
func ensureDatabase(ctx context.Context, adminDSN, name string) error {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("while connecting to the local cluster: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	// Another server starting at the same moment may win the race: that is fine.
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42P04" { // duplicate_database
			return fmt.Errorf("while creating the control database: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, `REVOKE ALL ON DATABASE `+pgx.Identifier{name}.Sanitize()+` FROM PUBLIC`); err != nil {
		return err
	}
	return nil
}

func writeSecretFile(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ControlDSN finds the control database for operator commands: the flag, or
// the embedded cluster's recorded DSN in the data dir.
func ControlDSN(databaseURL, dataDir string) (string, error) {
	if databaseURL != "" {
		return databaseURL, nil
	}
	if dataDir == "" {
		dataDir = DefaultDataDir()
	}
	b, err := os.ReadFile(filepath.Join(dataDir, controlDSNFile))
	if err != nil {
		return "", fmt.Errorf("no control database: pass --database-url, or start `capydb server --data-dir %s` first (%w)", dataDir, err)
	}
	return string(trimNL(b)), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
