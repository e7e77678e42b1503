package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Moving a project to another cluster (docs/fleet.md). project.move runs on
// the target cluster's node: it makes the source database read-only as the
// tenant, dumps it as the tenant over the network, restores it as the
// owner's agent on the target with the same role and password, and takes
// the project over; project.move_cleanup then drops the old copy on the
// source's node. Credentials stay; URLs name the new host.
const (
	JobProjectMove        = "project.move"
	JobProjectMoveCleanup = "project.move_cleanup"
)

type movePayload struct {
	Source     string `json:"source_cluster_id"`
	SourceHost string `json:"source_host"`
	SourcePort int    `json:"source_port"`
}

type moveCleanupPayload struct {
	Database string `json:"database"`
	Owner    string `json:"owner_role"`
}

// MoveResult is what a finished project.move reports.
type MoveResult struct {
	From string `json:"from_cluster_id"`
	To   string `json:"to_cluster_id"`
	// WriteUnavailableMS is how long the project refused writes: from the
	// source turning read-only to the copy being complete on the target.
	WriteUnavailableMS int64 `json:"write_unavailable_ms"`
}

// EnqueueMove queues the move of a ready project to cluster target, in one
// transaction with marking the project as moving there.
func EnqueueMove(ctx context.Context, st *store.Store, projectID, target string, actor Actor) (*queue.Job, error) {
	var job *queue.Job
	err := st.InTx(ctx, func(tx pgx.Tx) error {
		// Lock the row first: a concurrent move, delete or rotation waits.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM projects WHERE id = $1 FOR UPDATE`, projectID); err != nil {
			return err
		}
		p, err := store.GetProjectAny(ctx, tx, projectID)
		if err != nil {
			return domainerr.New(domainerr.NotFound, "project not found")
		}
		if p.DeletedAt != nil || p.State != store.ProjectReady {
			return conflictf("project %s is %s; only a ready project can move", p.ID, p.State)
		}
		if p.GraceRole != nil || p.RoleName != p.OwnerRole {
			return conflictf("project %s has a rotated login; move it after the rotation's grace window", p.ID)
		}
		if p.ClusterID == target {
			return conflictf("project %s is already on cluster %s", p.ID, target)
		}
		var moving *string
		if err := tx.QueryRow(ctx, `SELECT move_to FROM projects WHERE id = $1`, p.ID).Scan(&moving); err != nil {
			return err
		}
		if moving != nil {
			return conflictf("project %s is already moving to %s", p.ID, *moving)
		}
		if n, err := store.CountLivePreviews(ctx, tx, p.ID); err != nil {
			return err
		} else if n > 0 {
			return conflictf("project %s has %d previews; delete them before moving it", p.ID, n)
		}
		if restricted, err := store.HasNetworkRules(ctx, tx, p.ID); err != nil {
			return err
		} else if restricted {
			return conflictf("project %s has network restrictions, which a move does not carry over yet", p.ID)
		}
		to, err := store.GetCluster(ctx, tx, target)
		if err != nil {
			return invalidf("unknown cluster %q", target)
		}
		if to.State != store.ClusterActive || store.EffectiveState(to, time.Now()) != store.ClusterActive {
			return conflictf("cluster %s is %s, not open for projects", to.ID, store.EffectiveState(to, time.Now()))
		}
		if to.ReplicaOf != "" {
			return conflictf("cluster %s is a standby of %s: it takes no projects of its own", to.ID, to.ReplicaOf)
		}
		if to.PostgresVersion != p.PostgresVersion {
			return conflictf("cluster %s runs postgres %s, the project %s", to.ID, to.PostgresVersion, p.PostgresVersion)
		}
		from, err := store.GetCluster(ctx, tx, p.ClusterID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE projects SET move_to = $2, updated_at = now() WHERE id = $1`, p.ID, to.ID); err != nil {
			return err
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{Type: JobProjectMove, OrganizationID: p.OrganizationID,
			ProjectID: p.ID, ClusterID: to.ID, LockedResource: "project:" + p.ID, MaxAttempts: 3,
			Payload: movePayload{Source: from.ID, SourceHost: from.PublicHost, SourcePort: from.DirectPort}})
		if err != nil {
			return err
		}
		return audit(ctx, tx, p.OrganizationID, p.ID, "project.move_started", actor,
			map[string]any{"job_id": job.ID, "from_cluster_id": from.ID, "to_cluster_id": to.ID})
	})
	return job, err
}

// moveHandler runs project.move on the target cluster's node.
type moveHandler struct{ s *Service }

func (h *moveHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	var in movePayload
	if err := j.DecodePayload(&in); err != nil {
		return nil, queue.PermanentError(err)
	}
	p, err := h.s.liveProject(ctx, j)
	if err != nil {
		return nil, err
	}
	target := deref(j.ClusterID)
	if p.ClusterID == target {
		return MoveResult{From: in.Source, To: target}, nil // taken over by an earlier attempt
	}
	c, err := h.s.Cluster(target)
	if err != nil {
		return nil, err
	}
	limits, err := h.s.planForOrg(ctx, p.OrganizationID)
	if err != nil {
		return nil, err
	}
	pw, err := h.s.open(p.PasswordEnc)
	if err != nil {
		return nil, queue.PermanentError(fmt.Errorf("while decrypting credentials: %w", err))
	}
	rep.Secret(pw)
	source := sourceURL(in, p, pw)
	rep.Secret(source)

	// Writes stop here: as the tenant (the database's owner), never with
	// more rights, the source database defaults to read-only and the
	// tenant's open sessions end so none keeps writing.
	_ = rep.Progress(ctx, map[string]any{"phase": "freezing"})
	start := time.Now()
	if err := setReadOnly(ctx, source, true); err != nil {
		return nil, err
	}
	if err := c.EnsureLoginRole(ctx, p.OwnerRole, pw, limits.MaxConnections, limits.StatementTimeout, limits.IdleTransactionTimeout); err != nil {
		return nil, permanentIfForeign(err)
	}
	f, err := os.CreateTemp(h.s.cfg.TempDir, "capydb-move-*.dump")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_ = rep.Progress(ctx, map[string]any{"phase": "dumping"})
	err = c.DumpURL(ctx, source, f, rep.Command)
	f.Close()
	if err != nil {
		return nil, err
	}
	_ = rep.Progress(ctx, map[string]any{"phase": "restoring"})
	if err := c.Restore(ctx, dataplane.RestoreParams{File: f.Name(), Target: p.DatabaseName, Owner: p.OwnerRole,
		Template: dataplane.TemplateDatabase, Jobs: h.s.cloneWorkers(), Command: rep.Command}); err != nil {
		return nil, queue.PermanentError(err)
	}
	if err := c.SyncPooler(ctx); err != nil {
		return nil, err
	}
	return MoveResult{From: in.Source, To: target, WriteUnavailableMS: time.Since(start).Milliseconds()}, nil
}

// sourceURL is the tenant's own direct URL on the source cluster.
func sourceURL(in movePayload, p *store.Project, pw string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(p.RoleName, pw),
		Host: net.JoinHostPort(in.SourceHost, strconv.Itoa(in.SourcePort)), Path: "/" + p.DatabaseName,
		RawQuery: "sslmode=require&connect_timeout=10"}
	return u.String()
}

// setReadOnly switches the database's default_transaction_read_only as its
// owner and, when freezing, ends the owner's other sessions on it.
func setReadOnly(ctx context.Context, sourceURL string, on bool) error {
	cfg, err := pgx.ParseConfig(sourceURL)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["application_name"] = "capydb-move"
	cfg.RuntimeParams["search_path"] = "pg_catalog, pg_temp"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("while connecting to the source database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var db string
	if err := conn.QueryRow(ctx, `SELECT pg_catalog.current_database()`).Scan(&db); err != nil {
		return err
	}
	stmt := `ALTER DATABASE ` + pgx.Identifier{db}.Sanitize() + ` RESET default_transaction_read_only`
	if on {
		stmt = `ALTER DATABASE ` + pgx.Identifier{db}.Sanitize() + ` SET default_transaction_read_only = on`
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("while switching the source database's writes: %w", err)
	}
	if on {
		if _, err := conn.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
			WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database() AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
			  AND usename OPERATOR(pg_catalog.=) CURRENT_USER`); err != nil {
			return fmt.Errorf("while ending the source database's sessions: %w", err)
		}
	}
	return nil
}

// Abort gives the source its writes back and drops the partial copy.
func (h *moveHandler) Abort(ctx context.Context, j *queue.Job) error {
	var in movePayload
	if err := j.DecodePayload(&in); err != nil {
		return nil
	}
	p, err := h.s.project(ctx, j)
	if err != nil || p.ClusterID == deref(j.ClusterID) {
		return nil
	}
	pw, err := h.s.open(p.PasswordEnc)
	if err != nil {
		return nil
	}
	if err := setReadOnly(ctx, sourceURL(in, p, pw), false); err != nil {
		return err
	}
	c, err := h.s.Cluster(deref(j.ClusterID))
	if err != nil {
		return err
	}
	return c.DropTenantIfOwned(ctx, p.DatabaseName, p.OwnerRole)
}

// OnComplete takes the project over (its URLs now name this cluster) and
// asks the source's node to drop the old copy.
func (h *moveHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, result any) error {
	target := deref(j.ClusterID)
	var in movePayload
	if err := j.DecodePayload(&in); err != nil {
		return err
	}
	var p store.Project
	err := tx.QueryRow(ctx, `UPDATE projects SET cluster_id = $2, move_to = NULL, updated_at = now()
		WHERE id = $1 AND move_to = $2 RETURNING organization_id, database_name, owner_role`,
		*j.ProjectID, target).Scan(&p.OrganizationID, &p.DatabaseName, &p.OwnerRole)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // an earlier attempt took it over
	}
	if err != nil {
		return err
	}
	payload, _ := json.Marshal(moveCleanupPayload{Database: p.DatabaseName, Owner: p.OwnerRole})
	// No RETURNING: the node may write this job for the source cluster but not read it.
	if _, err := tx.Exec(ctx, `INSERT INTO jobs (id, type, organization_id, project_id, cluster_id, payload, max_attempts)
		VALUES ($1, $2, $3, $4, $5, $6, 5)`, ids.New("job_"), JobProjectMoveCleanup, p.OrganizationID, *j.ProjectID, in.Source, payload); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify('capydb_jobs', '')`); err != nil {
		return err
	}
	meta := map[string]any{"project_id": *j.ProjectID, "job_id": j.ID, "from_cluster_id": in.Source, "to_cluster_id": target}
	if r, ok := result.(MoveResult); ok {
		meta["write_unavailable_ms"] = r.WriteUnavailableMS
	}
	if err := audit(ctx, tx, p.OrganizationID, *j.ProjectID, "project.moved", Actor{Kind: "system"}, meta); err != nil {
		return err
	}
	return event(ctx, tx, p.OrganizationID, "project.moved", meta)
}

// OnFail leaves the project where it was (Abort gave it its writes back).
func (h *moveHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, msg string) error {
	_, err := tx.Exec(ctx, `UPDATE projects SET move_to = NULL, updated_at = now() WHERE id = $1 AND move_to = $2`,
		*j.ProjectID, deref(j.ClusterID))
	return err
}

// moveCleanupHandler drops a moved project's old copy on the source cluster.
type moveCleanupHandler struct{ s *Service }

func (h *moveCleanupHandler) Run(ctx context.Context, j *queue.Job, _ *queue.Reporter) (any, error) {
	var in moveCleanupPayload
	if err := j.DecodePayload(&in); err != nil {
		return nil, queue.PermanentError(err)
	}
	cluster := deref(j.ClusterID)
	// Another node may write this job: never drop what a project or preview
	// of this cluster still uses.
	var used bool
	if err := h.s.Store.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM projects WHERE cluster_id = $1 AND database_name = $2)
		OR EXISTS (SELECT 1 FROM preview_databases WHERE cluster_id = $1 AND database_name = $2 AND deleted_at IS NULL)
		OR EXISTS (SELECT 1 FROM projects WHERE cluster_id = $1 AND (owner_role = $3 OR role_name = $3))`,
		cluster, in.Database, in.Owner).Scan(&used); err != nil {
		return nil, err
	}
	if used {
		return nil, queue.PermanentError(fmt.Errorf("database %s or role %s is still used on this cluster", in.Database, in.Owner))
	}
	c, err := h.s.Cluster(cluster)
	if err != nil {
		return nil, err
	}
	return nil, c.DropTenantIfOwned(ctx, in.Database, in.Owner)
}

// Drain queues a move of every ready project off cluster c (already marked
// draining, so placement skips it) to the least loaded open cluster of the
// same region and version. Projects that cannot move now are reported in
// skipped, with the reason.
func Drain(ctx context.Context, st *store.Store, c *store.Cluster, actor Actor) (moved []*queue.Job, skipped []string, err error) {
	rows, err := st.Pool.Query(ctx, `SELECT id FROM projects WHERE cluster_id = $1 AND deleted_at IS NULL ORDER BY created_at, id`, c.ID)
	if err != nil {
		return nil, nil, err
	}
	projects, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, err
	}
	for _, id := range projects {
		var target *store.Cluster
		if err := st.InTx(ctx, func(tx pgx.Tx) error {
			var err error
			target, err = store.PlaceTx(ctx, tx, c.Region, c.PostgresVersion)
			return err
		}); err != nil {
			return moved, skipped, err
		}
		if target == nil {
			skipped = append(skipped, id+": no open cluster in region "+c.Region+" runs postgres "+c.PostgresVersion)
			continue
		}
		j, err := EnqueueMove(ctx, st, id, target.ID, actor)
		if err != nil {
			var de *domainerr.Error
			if errors.As(err, &de) {
				skipped = append(skipped, id+": "+err.Error())
				continue
			}
			return moved, skipped, err
		}
		moved = append(moved, j)
	}
	return moved, skipped, nil
}
