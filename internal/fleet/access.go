// Package fleet is the control-database side of running clusters on other
// hosts (docs/fleet.md): node credentials and the row-level security that
// confines each node to its own cluster's rows.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/scram"
	"github.com/capydb/capydb/internal/store"
)

// NodesRole is the group role every node login belongs to; the policies
// name it, so one set of policies serves every node.
const NodesRole = "capydb_nodes"

// ownCluster is the policy condition "a row of the cluster this node runs".
const ownCluster = `cluster_id IN (SELECT id FROM clusters WHERE node_role = current_user)`

// EnsureNodeAccess creates the nodes' group role and the row-level security
// that confines them, idempotently. It runs when the first node is added, so
// a single-machine installation never has either. The policies deny by
// default: a node sees its own cluster row; jobs, projects, previews and log
// rows of that cluster; rows of other tables only through those projects;
// organizations of its projects (read-only); it may append events and audit
// entries; it has no access at all to API keys, sessions, webhook endpoints,
// deliveries, approvals or any table not named here. The table owner (the
// control plane) is not subject to these policies.
func EnsureNodeAccess(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('capydb.fleet.access'))`); err != nil {
		return err
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, NodesRole).Scan(&exists); err != nil {
		return err
	}
	role := pgx.Identifier{NodesRole}.Sanitize()
	stmts := []string{}
	if !exists {
		stmts = append(stmts, `CREATE ROLE `+role+` NOLOGIN`)
	}
	var db string
	if err := tx.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		return err
	}
	stmts = append(stmts,
		`GRANT CONNECT ON DATABASE `+pgx.Identifier{db}.Sanitize()+` TO `+role,
		`GRANT USAGE ON SCHEMA public TO `+role,
		`GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO `+role,
		`GRANT SELECT ON goose_db_version TO `+role,
		`GRANT INSERT ON events, audit_events TO `+role,
	)
	policy := func(table, using string, privs string) {
		t := pgx.Identifier{table}.Sanitize()
		stmts = append(stmts,
			`ALTER TABLE `+t+` ENABLE ROW LEVEL SECURITY`,
			`DROP POLICY IF EXISTS capydb_node ON `+t,
			`CREATE POLICY capydb_node ON `+t+` TO `+role+` USING (`+using+`)`,
			`GRANT `+privs+` ON `+t+` TO `+role)
	}
	policy("clusters", `node_role = current_user`, "SELECT, UPDATE")
	// A primary's node and its standbys' nodes see each other's rows (host,
	// ports, sealed admin and replication passwords): a standby is a physical
	// copy of its primary. The function reads clusters as its owner, so the
	// policy does not recurse into itself.
	stmts = append(stmts,
		`CREATE OR REPLACE FUNCTION capydb_node_peer_clusters() RETURNS SETOF text
			LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $f$
			SELECT c.id FROM clusters c JOIN clusters me ON me.node_role = session_user
			WHERE c.replica_of = me.id OR c.id = me.replica_of $f$`,
		`REVOKE ALL ON FUNCTION capydb_node_peer_clusters() FROM PUBLIC`,
		`GRANT EXECUTE ON FUNCTION capydb_node_peer_clusters() TO `+role,
		`DROP POLICY IF EXISTS capydb_node_peers ON clusters`,
		`CREATE POLICY capydb_node_peers ON clusters FOR SELECT TO `+role+` USING (id IN (SELECT capydb_node_peer_clusters()))`,
		// A standby's node reads its primary's projects (network rules follow
		// them to the standby's HBA files); it writes none of them.
		`DROP POLICY IF EXISTS capydb_node_standby ON projects`,
		`CREATE POLICY capydb_node_standby ON projects FOR SELECT TO `+role+
			` USING (cluster_id IN (SELECT replica_of FROM clusters WHERE node_role = current_user))`)
	// The target node of a move sees the project while it copies it, and
	// takes it over by setting cluster_id to its own cluster.
	policy("projects", ownCluster+` OR move_to IN (SELECT id FROM clusters WHERE node_role = current_user)`,
		"SELECT, INSERT, UPDATE, DELETE")
	// After a move the target node asks the source's node to drop the old
	// copy: the only job it may write for another cluster. The cleanup
	// handler drops nothing a live project or preview of its cluster uses.
	stmts = append(stmts, `DROP POLICY IF EXISTS capydb_node_move_cleanup ON jobs`,
		`CREATE POLICY capydb_node_move_cleanup ON jobs FOR INSERT TO `+role+` WITH CHECK (type = 'project.move_cleanup')`)
	policy("organizations", `id IN (SELECT organization_id FROM projects)`, "SELECT")
	tables, err := tablesWithColumns(ctx, tx)
	if err != nil {
		return err
	}
	for _, t := range tables {
		switch {
		case t.name == "clusters" || t.name == "projects" || t.name == "events" || t.name == "audit_events" || denied[t.name]:
		case t.cluster:
			policy(t.name, ownCluster, "SELECT, INSERT, UPDATE, DELETE")
		case t.project:
			policy(t.name, `project_id IN (SELECT id FROM projects)`, "SELECT, INSERT, UPDATE, DELETE")
		}
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("while setting up node access (%s): %w", s, err)
		}
	}
	return nil
}

// denied are tables a node never needs: credentials, sessions, webhook
// secrets, approvals and the dashboard's own rows.
var denied = map[string]bool{"api_keys": true, "approvals": true, "cli_login_sessions": true,
	"webhook_endpoints": true, "webhook_deliveries": true, "sql_history": true, "sql_snippets": true,
	"notification_preferences": true}

type table struct {
	name             string
	cluster, project bool
}

// tablesWithColumns lists the public tables with a cluster_id or project_id column.
func tablesWithColumns(ctx context.Context, tx pgx.Tx) ([]table, error) {
	rows, err := tx.Query(ctx, `SELECT c.table_name,
			bool_or(c.column_name = 'cluster_id'), bool_or(c.column_name = 'project_id')
		FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.column_name IN ('cluster_id', 'project_id')
		GROUP BY c.table_name ORDER BY c.table_name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		err := r.Scan(&t.name, &t.cluster, &t.project)
		return t, err
	})
}

// Node is a newly added node's credential: the cluster row it will fill in
// at its first start, and its control-database login.
type Node struct {
	Cluster  *store.Cluster
	Role     string
	Password string
}

// AddNode registers a cluster to be run by a `capydb node` and creates its
// control-database login (a member of NodesRole). The cluster is offline
// until the node first starts. The password is returned once; the control
// database keeps only its SCRAM verifier.
func AddNode(ctx context.Context, st *store.Store, name, region string, maxProjects int) (*Node, error) {
	return addNode(ctx, st, name, region, maxProjects, nil)
}

// AddReplica registers a standby cluster of primary, run by its own node
// (docs/fleet.md, "Standby clusters"): the node copies the primary with
// pg_basebackup at its first start and streams from a slot the primary's
// node creates. It takes the primary's region and Postgres major.
func AddReplica(ctx context.Context, st *store.Store, primary *store.Cluster, name string) (*Node, error) {
	if primary.ReplicaOf != "" {
		return nil, fmt.Errorf("cluster %s is itself a standby of %s: add the replica to the primary", primary.Name, primary.ReplicaOf)
	}
	if primary.NodeRole == "" {
		return nil, fmt.Errorf("cluster %s is the embedded cluster: its standby is `capydb server --read-replica`; standby clusters follow a node's cluster", primary.Name)
	}
	if primary.State == store.ClusterFenced {
		return nil, fmt.Errorf("cluster %s is fenced (failed over to %s)", primary.Name, primary.FailedOverTo)
	}
	return addNode(ctx, st, name, primary.Region, 0, primary)
}

func addNode(ctx context.Context, st *store.Store, name, region string, maxProjects int, primary *store.Cluster) (*Node, error) {
	if name == "" || region == "" {
		return nil, errors.New("a node needs a name and a region")
	}
	if maxProjects < 0 {
		return nil, errors.New("--max-projects must not be negative")
	}
	id := ids.New("cl_")
	n := &Node{Role: "capydb_node_" + strings.ToLower(strings.TrimPrefix(id, "cl_")), Password: ids.RandomBase62(32)}
	verifier, err := scram.Verifier(n.Password)
	if err != nil {
		return nil, err
	}
	// Setting up the policies takes table locks while running nodes write
	// (logs, jobs): a deadlock with them is retried.
	err = retryDeadlock(ctx, func() error {
		return st.InTx(ctx, func(tx pgx.Tx) error {
			if err := EnsureNodeAccess(ctx, tx); err != nil {
				return err
			}
			// The verifier, never the password, goes into the statement (and so
			// into any statement log).
			if _, err := tx.Exec(ctx, `CREATE ROLE `+pgx.Identifier{n.Role}.Sanitize()+` LOGIN IN ROLE `+
				pgx.Identifier{NodesRole}.Sanitize()+` PASSWORD '`+strings.ReplaceAll(verifier, "'", "''")+`'`); err != nil {
				return fmt.Errorf("while creating the node's login: %w", err)
			}
			var replicaOf *string
			version := ""
			if primary != nil {
				replicaOf, version = &primary.ID, primary.PostgresVersion
			}
			if _, err := tx.Exec(ctx, `INSERT INTO clusters (id, name, provider, region, public_host, direct_port,
				pooled_port, postgres_version, state, node_role, max_projects, replica_of)
			VALUES ($1, $2, 'external', $3, '', 0, 0, $6, 'offline', $4, $5, $7)`, id, name, region, n.Role, maxProjects,
				version, replicaOf); err != nil {
				if store.IsUniqueViolation(err, "") {
					return fmt.Errorf("a cluster named %q already exists", name)
				}
				return err
			}
			n.Cluster, err = store.GetCluster(ctx, tx, id)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// retryDeadlock runs f again (up to five times) when Postgres broke a
// deadlock by failing it.
func retryDeadlock(ctx context.Context, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		var pgErr *pgconn.PgError
		if err == nil || attempt == 5 || !errors.As(err, &pgErr) || pgErr.Code != "40P01" {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
}

// RevokeNode takes a node's login away and ends its sessions; its cluster
// stays registered (offline) with its projects until the operator removes it.
func RevokeNode(ctx context.Context, st *store.Store, c *store.Cluster) error {
	if c.NodeRole == "" {
		return fmt.Errorf("cluster %s is not run by a node", c.Name)
	}
	if _, err := st.Pool.Exec(ctx, `ALTER ROLE `+pgx.Identifier{c.NodeRole}.Sanitize()+` NOLOGIN`); err != nil {
		return err
	}
	_, err := st.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, c.NodeRole)
	return err
}

// NodeDSN is the control-database URL a node connects with: the operator's
// control DSN with the node's login, and host:port replaced by controlHost
// when given (the address the node reaches the control database at).
func NodeDSN(controlDSN, controlHost string, n *Node) (string, error) {
	u, err := url.Parse(controlDSN)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("the control database URL must be a postgres:// URL to derive a node's URL from it")
	}
	u.User = url.UserPassword(n.Role, n.Password)
	if controlHost != "" {
		if _, _, err := net.SplitHostPort(controlHost); err != nil {
			controlHost = net.JoinHostPort(controlHost, strconv.Itoa(portOf(u)))
		}
		u.Host = controlHost
	}
	return u.String(), nil
}

func portOf(u *url.URL) int {
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	return 5432
}
