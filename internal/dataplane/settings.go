package dataplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TenantSettings are the Postgres settings a project may change
// (docs/database-settings.md). Each is written per (login role, database)
// with ALTER ROLE … IN DATABASE … SET, which beats the role-level plan
// defaults and database-level settings.
var TenantSettings = []string{
	"effective_cache_size", "idle_in_transaction_session_timeout", "lock_timeout",
	"log_min_duration_statement", "maintenance_work_mem", "max_parallel_workers_per_gather",
	"session_replication_role", "statement_timeout", "temp_file_limit", "timezone", "work_mem",
}

// readOnlySetting is written by read-only mode only, never by a settings change.
const readOnlySetting = "default_transaction_read_only"

// settingName is what a setting name may look like before any lookup.
var settingName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// clusterContexts are pg_settings contexts that are cluster-wide.
var clusterContexts = []string{"postmaster", "sighup", "internal", "backend", "superuser-backend"}

// SettingError is a setting or value a project may not use; Field names it.
type SettingError struct{ Field, Msg string }

func (e *SettingError) Error() string { return e.Msg }

// ValidateSettings checks names against the allowlist and values against
// pg_settings: each value is tried with set_config in a transaction that is
// rolled back, so Postgres itself checks type, unit, range and enum values.
func (c *Cluster) ValidateSettings(ctx context.Context, set map[string]string, reset []string) error {
	names := make([]string, 0, len(set)+len(reset))
	for n := range set {
		names = append(names, n)
	}
	names = append(names, reset...)
	sort.Strings(names)
	for _, n := range names {
		if err := c.checkSettingName(ctx, n); err != nil {
			return err
		}
	}
	tx, err := c.admin.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	for _, n := range names {
		v, ok := set[n]
		if !ok {
			continue
		}
		if len(v) > 200 || strings.ContainsRune(v, 0) {
			return &SettingError{Field: n, Msg: fmt.Sprintf("invalid value for %s: at most 200 characters", n)}
		}
		if _, err := tx.Exec(ctx, `SAVEPOINT v`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config($1, $2, true)`, n, v); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && (pgErr.Code == "22023" || pgErr.Code == "22P02" || pgErr.Code == "42704") {
				// Postgres's message names the setting and the value.
				msg := pgErr.Message
				if pgErr.Hint != "" {
					msg += " (" + pgErr.Hint + ")"
				}
				return &SettingError{Field: n, Msg: msg}
			}
			return err
		}
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT v`); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) checkSettingName(ctx context.Context, n string) error {
	if !settingName.MatchString(n) {
		return &SettingError{Field: n, Msg: fmt.Sprintf("invalid setting name %q: lowercase letters, digits and _ only", n)}
	}
	if slices.Contains(TenantSettings, n) {
		return nil
	}
	var context string
	err := c.admin.QueryRow(ctx, `SELECT context FROM pg_catalog.pg_settings WHERE lower(name) = $1`, n).Scan(&context)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return &SettingError{Field: n, Msg: fmt.Sprintf("unknown setting %s; settable per project: %s", n, strings.Join(TenantSettings, ", "))}
	case err != nil:
		return err
	case slices.Contains(clusterContexts, context):
		return &SettingError{Field: n, Msg: fmt.Sprintf("%s is a cluster-level setting, not settable per project", n)}
	case n == readOnlySetting:
		return &SettingError{Field: n, Msg: "default_transaction_read_only is set by read-only mode (PUT …/read-only), not here"}
	}
	return &SettingError{Field: n, Msg: fmt.Sprintf("%s is not settable per project; settable: %s", n, strings.Join(TenantSettings, ", "))}
}

// tenantLogins are the login roles whose sessions act as owner: owner itself
// and its member logins (rotated credentials), never CapyDB's agents or
// follow roles.
func (c *Cluster) tenantLogins(ctx context.Context, owner string) ([]string, error) {
	rows, err := c.admin.Query(ctx, `
		SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.rolname = $1
		UNION
		SELECT r.rolname FROM pg_catalog.pg_auth_members m
		  JOIN pg_catalog.pg_roles o ON o.oid = m.roleid
		  JOIN pg_catalog.pg_roles r ON r.oid = m.member
		WHERE o.rolname = $1 AND r.rolcanlogin AND NOT r.rolsuper AND r.rolname NOT LIKE 'capydb\_agent\_%'
		  AND r.rolname NOT LIKE 'capydb\_follow\_%' -- a follow import's apply role is not a tenant login
		ORDER BY 1`, owner)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// SettingsChange is one settings job: values to set, names to reset and an
// optional connection limit. Names must have passed ValidateSettings.
type SettingsChange struct {
	Set             map[string]string
	Reset           []string
	ConnectionLimit *int
}

// ApplyTenantSettings writes a change for every login of owner in db, from
// the "postgres" database (no tenant code runs), then makes pgBouncer
// recycle db's server connections so pooled sessions see it.
func (c *Cluster) ApplyTenantSettings(ctx context.Context, db, owner string, ch SettingsChange) error {
	for n := range ch.Set {
		if !slices.Contains(TenantSettings, n) && n != readOnlySetting {
			return &SettingError{Field: n, Msg: fmt.Sprintf("%s is not settable per project", n)}
		}
	}
	logins, err := c.tenantLogins(ctx, owner)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(ch.Set))
	for n := range ch.Set {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, login := range logins {
		for _, n := range names {
			if _, err := c.admin.Exec(ctx, `ALTER ROLE `+ident(login)+` IN DATABASE `+ident(db)+` SET `+n+` = `+literal(ch.Set[n])); err != nil {
				return fmt.Errorf("while setting %s: %w", n, err)
			}
		}
		for _, n := range ch.Reset {
			if !slices.Contains(TenantSettings, n) && n != readOnlySetting {
				continue
			}
			if _, err := c.admin.Exec(ctx, `ALTER ROLE `+ident(login)+` IN DATABASE `+ident(db)+` RESET `+n); err != nil {
				return fmt.Errorf("while resetting %s: %w", n, err)
			}
		}
		if ch.ConnectionLimit != nil {
			if _, err := c.admin.Exec(ctx, fmt.Sprintf(`ALTER ROLE %s CONNECTION LIMIT %d`, ident(login), *ch.ConnectionLimit)); err != nil {
				return fmt.Errorf("while changing the connection limit: %w", err)
			}
		}
	}
	if ch.ConnectionLimit != nil {
		// max_db_connections is derived from the owner's limit.
		if err := c.SyncPooler(ctx); err != nil {
			return err
		}
	}
	return c.reconnect(ctx, db)
}

// TenantSettingsState is what a project's catalogs say about its settings.
type TenantSettingsState struct {
	Settings        map[string]string // allowlisted settings, text as written
	ReadOnly        bool
	ConnectionLimit int
}

// ReadTenantSettings reads login's settings in db from pg_db_role_setting
// (the text as written: SHOW would turn 60s into 1min).
func (c *Cluster) ReadTenantSettings(ctx context.Context, db, login string) (*TenantSettingsState, error) {
	st := &TenantSettingsState{Settings: map[string]string{}}
	if err := c.admin.QueryRow(ctx, `SELECT rolconnlimit FROM pg_catalog.pg_roles WHERE rolname = $1`, login).Scan(&st.ConnectionLimit); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, &ForeignObjectError{Msg: fmt.Sprintf("role %s does not exist", login)}
		}
		return nil, err
	}
	rows, err := c.admin.Query(ctx, `
		SELECT pg_catalog.unnest(s.setconfig) FROM pg_catalog.pg_db_role_setting s
		WHERE s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = $1)
		  AND s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $2)`, db, login)
	if err != nil {
		return nil, err
	}
	items, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		k, v, _ := strings.Cut(it, "=")
		k = strings.ToLower(k)
		switch {
		case k == readOnlySetting:
			st.ReadOnly = v == "on" || v == "true" || v == "1"
		case slices.Contains(TenantSettings, k):
			st.Settings[k] = v
		}
	}
	return st, nil
}

// CopyTenantSettings gives a new login of a project the (role, database)
// settings and connection limit of the current one (credential rotation).
func (c *Cluster) CopyTenantSettings(ctx context.Context, db, from, to string) error {
	st, err := c.ReadTenantSettings(ctx, db, from)
	if err != nil {
		return err
	}
	set := st.Settings
	if st.ReadOnly {
		set[readOnlySetting] = "on"
	}
	for _, n := range slices.Sorted(maps.Keys(set)) {
		if _, err := c.admin.Exec(ctx, `ALTER ROLE `+ident(to)+` IN DATABASE `+ident(db)+` SET `+n+` = `+literal(set[n])); err != nil {
			return fmt.Errorf("while copying %s: %w", n, err)
		}
	}
	_, err = c.admin.Exec(ctx, fmt.Sprintf(`ALTER ROLE %s CONNECTION LIMIT %d`, ident(to), st.ConnectionLimit))
	return err
}

// SetReadOnly switches a project's database to read-only (or back): the
// default_transaction_read_only default of its logins, then its sessions are
// ended so that every session, pooled server connections included, starts
// again with the new default.
func (c *Cluster) SetReadOnly(ctx context.Context, db, owner string, on bool) error {
	ch := SettingsChange{}
	if on {
		ch.Set = map[string]string{readOnlySetting: "on"}
	} else {
		ch.Reset = []string{readOnlySetting}
	}
	if err := c.ApplyTenantSettings(ctx, db, owner, ch); err != nil {
		return err
	}
	logins, err := c.tenantLogins(ctx, owner)
	if err != nil {
		return err
	}
	_, err = c.admin.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
		WHERE datname = $1 AND usename = ANY($2) AND pid <> pg_catalog.pg_backend_pid()`, db, logins)
	if err != nil {
		return fmt.Errorf("while ending the sessions of %s: %w", db, err)
	}
	return nil
}
