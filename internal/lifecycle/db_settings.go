package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// Job types of database settings (docs/database-settings.md).
const (
	JobProjectSettingsUpdate   = "project.settings_update"
	JobProjectPoolerUpdate     = "project.pooler_update"
	JobProjectSetReadOnly      = "instance.set_readonly"
	JobProjectExtensionEnable  = "project.extension_enable"
	JobProjectExtensionDisable = "project.extension_disable"
	JobProjectExtensionUpdate  = "project.extension_update"
	JobProjectUpgradeMinor     = "project.upgrade_minor"
)

// WriteWindow is how long a temporary write window lasts.
const WriteWindow = 15 * time.Minute

// settingsPayload is a project.settings_update.
type settingsPayload struct {
	Set             map[string]string `json:"set,omitempty"`
	Reset           []string          `json:"reset,omitempty"`
	ConnectionLimit *int              `json:"connection_limit,omitempty"`
}

type poolerPayload struct {
	PoolSize int    `json:"pool_size,omitempty"`
	PoolMode string `json:"pool_mode,omitempty"`
}

type readOnlyPayload struct {
	Enabled bool `json:"enabled"`
	// Window marks the re-enable at the end of a write window: it applies
	// only if no later read-only change was queued.
	Window bool `json:"window,omitempty"`
}

type extensionPayload struct {
	Name string `json:"name"`
}

// DatabaseSettings is what GET …/database-settings answers.
type DatabaseSettings struct {
	Settings           map[string]string
	ConnectionLimit    int
	MaxConnectionLimit int
	ReadOnly           bool
}

// clusterFor is the project's cluster handle, for reads and validation at
// request time; unreachable is 503.
func (s *Service) clusterFor(p *store.Project) (*dataplane.Cluster, error) {
	c, err := s.Cluster(p.ClusterID)
	if err != nil {
		return nil, domainerr.New(domainerr.Unavailable, "the project's cluster is not reachable from this server; try again")
	}
	return c, nil
}

// invalidSetting turns dataplane's validation errors into 400s.
func invalidSetting(err error) error {
	var se *dataplane.SettingError
	if errors.As(err, &se) {
		return domainerr.New(domainerr.Invalid, se.Msg)
	}
	var ue *dataplane.ExtensionUnavailableError
	if errors.As(err, &ue) {
		return domainerr.New(domainerr.Invalid, ue.Msg)
	}
	return err
}

// GetDatabaseSettings reads a project's settings from its cluster.
func (s *Service) GetDatabaseSettings(ctx context.Context, p *store.Project) (*DatabaseSettings, error) {
	c, err := s.clusterFor(p)
	if err != nil {
		return nil, err
	}
	st, err := c.ReadTenantSettings(ctx, p.DatabaseName, p.RoleName)
	if err != nil {
		return nil, err
	}
	limits, err := s.planForOrg(ctx, p.OrganizationID)
	if err != nil {
		return nil, err
	}
	return &DatabaseSettings{Settings: st.Settings, ConnectionLimit: st.ConnectionLimit,
		MaxConnectionLimit: limits.MaxConnections, ReadOnly: st.ReadOnly}, nil
}

// UpdateDatabaseSettings validates a change against the cluster's
// pg_settings and queues project.settings_update on the project's lock.
func (s *Service) UpdateDatabaseSettings(ctx context.Context, p *store.Project, set map[string]string, reset []string,
	connLimit *int, actor Actor) (*queue.Job, error) {
	if len(set) == 0 && len(reset) == 0 && connLimit == nil {
		return nil, invalidf("send at least one of settings, reset, connection_limit")
	}
	for _, n := range reset {
		if _, ok := set[n]; ok {
			return nil, invalidf("%s is both set and reset", n)
		}
	}
	c, err := s.clusterFor(p)
	if err != nil {
		return nil, err
	}
	if err := c.ValidateSettings(ctx, set, reset); err != nil {
		return nil, invalidSetting(err)
	}
	if connLimit != nil {
		limits, err := s.planForOrg(ctx, p.OrganizationID)
		if err != nil {
			return nil, err
		}
		// Below 7 the pooler's budget (limit - 5, split in two) is empty.
		if *connLimit < 7 || *connLimit > limits.MaxConnections {
			return nil, invalidf("invalid field \"connection_limit\": must be between 7 and the plan's %d", limits.MaxConnections)
		}
	}
	meta := map[string]any{"set": set, "reset": reset}
	if connLimit != nil {
		meta["connection_limit"] = *connLimit
	}
	return s.enqueueProjectJob(ctx, p, JobProjectSettingsUpdate, settingsPayload{Set: set, Reset: reset, ConnectionLimit: connLimit},
		time.Time{}, "project.settings_updated", actor, meta)
}

// enqueueProjectJob queues a job on a ready project's lock with its audit
// event (auditAction "" = none).
func (s *Service) enqueueProjectJob(ctx context.Context, p *store.Project, typ string, payload any, runAt time.Time,
	auditAction string, actor Actor, meta map[string]any) (*queue.Job, error) {
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		lp, err := lockReadyProject(ctx, tx, p.OrganizationID, p.ID)
		if err != nil {
			return err
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{
			Type: typ, OrganizationID: lp.OrganizationID, ProjectID: lp.ID, ClusterID: lp.ClusterID,
			LockedResource: "project:" + lp.ID, Payload: payload, RunAt: runAt,
		})
		if err != nil {
			return err
		}
		if auditAction == "" {
			return nil
		}
		meta["job_id"] = job.ID
		return audit(ctx, tx, lp.OrganizationID, lp.ID, auditAction, actor, meta)
	})
	return job, err
}

// PoolerSettings is what GET …/pooler-settings answers.
type PoolerSettings struct {
	PoolSize         int
	PoolMode         string
	MaxDBConnections int
	DefaultPoolSize  int
}

// defaultPoolSize is pgbouncer.ini's default_pool_size (localcluster).
const defaultPoolSize = 20

// GetPoolerSettings reads a project's pooler settings.
func (s *Service) GetPoolerSettings(ctx context.Context, p *store.Project) (*PoolerSettings, error) {
	c, err := s.clusterFor(p)
	if err != nil {
		return nil, err
	}
	ps, err := c.ReadPoolSettings(ctx, p.DatabaseName)
	if err != nil {
		return nil, err
	}
	st, err := c.ReadTenantSettings(ctx, p.DatabaseName, p.RoleName)
	if err != nil {
		return nil, err
	}
	out := &PoolerSettings{PoolSize: ps.PoolSize, PoolMode: ps.PoolMode, MaxDBConnections: max(st.ConnectionLimit-5, 2),
		DefaultPoolSize: defaultPoolSize}
	if out.PoolMode == "" {
		out.PoolMode = dataplane.PoolModeTransaction
	}
	if out.PoolSize == 0 {
		out.PoolSize = min(defaultPoolSize, out.MaxDBConnections)
	}
	return out, nil
}

// UpdatePoolerSettings queues project.pooler_update.
func (s *Service) UpdatePoolerSettings(ctx context.Context, p *store.Project, poolSize *int, poolMode string, actor Actor) (*queue.Job, error) {
	if poolSize == nil && poolMode == "" {
		return nil, invalidf("send at least one of pool_size, pool_mode")
	}
	if poolMode != "" && poolMode != dataplane.PoolModeTransaction && poolMode != dataplane.PoolModeSession {
		return nil, invalidf("invalid field \"pool_mode\": must be transaction or session")
	}
	var payload poolerPayload
	payload.PoolMode = poolMode
	if poolSize != nil {
		c, err := s.clusterFor(p)
		if err != nil {
			return nil, err
		}
		st, err := c.ReadTenantSettings(ctx, p.DatabaseName, p.RoleName)
		if err != nil {
			return nil, err
		}
		maxDB := max(st.ConnectionLimit-5, 2)
		if *poolSize < 1 || *poolSize > maxDB {
			return nil, invalidf("invalid field \"pool_size\": must be between 1 and max_db_connections (%d, the connection limit minus 5)", maxDB)
		}
		payload.PoolSize = *poolSize
	}
	return s.enqueueProjectJob(ctx, p, JobProjectPoolerUpdate, payload, time.Time{}, "project.pooler_updated", actor,
		map[string]any{"pool_size": payload.PoolSize, "pool_mode": poolMode})
}

// ReadOnlyStatus is what GET …/read-only answers.
type ReadOnlyStatus struct {
	Enabled             bool
	OverrideActiveUntil *time.Time
}

// GetReadOnly reads the project's read-only default and any open write window.
func (s *Service) GetReadOnly(ctx context.Context, p *store.Project) (*ReadOnlyStatus, error) {
	c, err := s.clusterFor(p)
	if err != nil {
		return nil, err
	}
	st, err := c.ReadTenantSettings(ctx, p.DatabaseName, p.RoleName)
	if err != nil {
		return nil, err
	}
	out := &ReadOnlyStatus{Enabled: st.ReadOnly}
	var until time.Time
	err = s.Store.Pool.QueryRow(ctx, `SELECT j.run_at FROM jobs j WHERE j.project_id = $1 AND j.type = $2
		AND j.state = 'pending' AND (j.payload->>'window')::boolean
		AND NOT EXISTS (SELECT 1 FROM jobs l WHERE l.project_id = j.project_id AND l.type = j.type AND l.created_at > j.created_at)
		ORDER BY j.run_at DESC LIMIT 1`, p.ID, JobProjectSetReadOnly).Scan(&until)
	if err == nil {
		u := until.UTC()
		out.OverrideActiveUntil = &u
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	return out, nil
}

// SetReadOnly queues instance.set_readonly; with window, writes are allowed
// now and read-only comes back after WriteWindow (unless a later change
// was queued meanwhile).
func (s *Service) SetReadOnly(ctx context.Context, p *store.Project, enabled, window bool, actor Actor) (*queue.Job, error) {
	if window {
		enabled = false
		// A window only makes sense on a read-only project (or extends an
		// open window); otherwise its end would switch read-only on.
		st, err := s.GetReadOnly(ctx, p)
		if err != nil {
			return nil, err
		}
		if !st.Enabled && st.OverrideActiveUntil == nil {
			return nil, conflictf("read-only mode is off: there is no write window to open")
		}
	}
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		lp, err := lockReadyProject(ctx, tx, p.OrganizationID, p.ID)
		if err != nil {
			return err
		}
		params := queue.EnqueueParams{Type: JobProjectSetReadOnly, OrganizationID: lp.OrganizationID, ProjectID: lp.ID,
			ClusterID: lp.ClusterID, LockedResource: "project:" + lp.ID, Payload: readOnlyPayload{Enabled: enabled}}
		if job, err = queue.Enqueue(ctx, tx, params); err != nil {
			return err
		}
		meta := map[string]any{"job_id": job.ID, "enabled": enabled}
		if window {
			params.Payload = readOnlyPayload{Enabled: true, Window: true}
			params.RunAt = time.Now().Add(WriteWindow)
			if _, err := queue.Enqueue(ctx, tx, params); err != nil {
				return err
			}
			meta["write_window_until"] = params.RunAt.UTC().Format(time.RFC3339)
		}
		return audit(ctx, tx, lp.OrganizationID, lp.ID, "project.read_only_changed", actor, meta)
	})
	return job, err
}

// ExtensionsOf lists the allowlisted extensions of the project's cluster.
func (s *Service) ExtensionsOf(ctx context.Context, p *store.Project) ([]dataplane.ExtensionInfo, error) {
	c, err := s.clusterFor(p)
	if err != nil {
		return nil, err
	}
	return c.ProjectExtensions(ctx, p.DatabaseName)
}

// ChangeExtension queues an extension job after checking the name.
func (s *Service) ChangeExtension(ctx context.Context, p *store.Project, name, op string, actor Actor) (*queue.Job, error) {
	c, err := s.clusterFor(p)
	if err != nil {
		return nil, err
	}
	if op == dataplane.ExtensionEnable {
		err = c.CheckExtension(ctx, name)
	} else if !slices.Contains(dataplane.AllowedExtensions, name) {
		err = invalidf("extension %q is not on the allowlist (%v)", name, dataplane.AllowedExtensions)
	}
	if err != nil {
		return nil, invalidSetting(err)
	}
	typ := map[string]string{dataplane.ExtensionEnable: JobProjectExtensionEnable,
		dataplane.ExtensionDisable: JobProjectExtensionDisable, dataplane.ExtensionUpdate: JobProjectExtensionUpdate}[op]
	action := map[string]string{JobProjectExtensionEnable: "project.extension_enabled",
		JobProjectExtensionDisable: "project.extension_disabled", JobProjectExtensionUpdate: "project.extension_updated"}[typ]
	return s.enqueueProjectJob(ctx, p, typ, extensionPayload{Name: name}, time.Time{}, action, actor, map[string]any{"name": name})
}

// UpgradeMinor queues project.upgrade_minor.
func (s *Service) UpgradeMinor(ctx context.Context, p *store.Project, actor Actor) (*queue.Job, error) {
	return s.enqueueProjectJob(ctx, p, JobProjectUpgradeMinor, struct{}{}, time.Time{}, "project.upgrade_minor_requested", actor, map[string]any{})
}

// settingsHandler runs the settings jobs.
type settingsHandler struct {
	s   *Service
	run func(ctx context.Context, p *store.Project, c *dataplane.Cluster, j *queue.Job) (any, error)
}

func (h *settingsHandler) Run(ctx context.Context, j *queue.Job, _ *queue.Reporter) (any, error) {
	p, c, err := h.s.liveProjectCluster(ctx, j)
	if err != nil {
		return nil, err
	}
	if p.State != store.ProjectReady {
		return nil, queue.PermanentError(fmt.Errorf("project is not ready (state %s)", p.State))
	}
	res, err := h.run(ctx, p, c, j)
	var se *dataplane.SettingError
	var ue *dataplane.ExtensionUnavailableError
	var fe *dataplane.ExtensionFailedError
	var fo *dataplane.ForeignObjectError
	if errors.As(err, &se) || errors.As(err, &ue) || errors.As(err, &fe) || errors.As(err, &fo) {
		return nil, queue.PermanentError(err)
	}
	return res, err
}

func (s *Service) settingsHandlers() map[string]queue.Handler {
	ext := func(op string) *settingsHandler {
		return &settingsHandler{s: s, run: func(ctx context.Context, p *store.Project, c *dataplane.Cluster, j *queue.Job) (any, error) {
			var in extensionPayload
			if err := j.DecodePayload(&in); err != nil {
				return nil, queue.PermanentError(err)
			}
			changed, err := c.ChangeExtension(ctx, p.DatabaseName, in.Name, op)
			if err != nil {
				return nil, err
			}
			return wire.ExtensionJobResult{Name: in.Name, Changed: changed}, nil
		}}
	}
	return map[string]queue.Handler{
		JobProjectSettingsUpdate: &settingsHandler{s: s, run: func(ctx context.Context, p *store.Project, c *dataplane.Cluster, j *queue.Job) (any, error) {
			var in settingsPayload
			if err := j.DecodePayload(&in); err != nil {
				return nil, queue.PermanentError(err)
			}
			return nil, c.ApplyTenantSettings(ctx, p.DatabaseName, p.OwnerRole,
				dataplane.SettingsChange{Set: in.Set, Reset: in.Reset, ConnectionLimit: in.ConnectionLimit})
		}},
		JobProjectPoolerUpdate: &settingsHandler{s: s, run: func(ctx context.Context, p *store.Project, c *dataplane.Cluster, j *queue.Job) (any, error) {
			var in poolerPayload
			if err := j.DecodePayload(&in); err != nil {
				return nil, queue.PermanentError(err)
			}
			return nil, c.ApplyPoolSettings(ctx, p.DatabaseName, dataplane.PoolSettings{PoolSize: in.PoolSize, PoolMode: in.PoolMode})
		}},
		JobProjectSetReadOnly: &settingsHandler{s: s, run: func(ctx context.Context, p *store.Project, c *dataplane.Cluster, j *queue.Job) (any, error) {
			var in readOnlyPayload
			if err := j.DecodePayload(&in); err != nil {
				return nil, queue.PermanentError(err)
			}
			if in.Window {
				var later bool
				if err := s.Store.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM jobs WHERE project_id = $1 AND type = $2
					AND created_at > $3)`, p.ID, JobProjectSetReadOnly, j.CreatedAt).Scan(&later); err != nil {
					return nil, err
				}
				if later {
					return nil, nil // a later read-only change replaced this window's end
				}
			}
			return nil, c.SetReadOnly(ctx, p.DatabaseName, p.OwnerRole, in.Enabled)
		}},
		JobProjectExtensionEnable:  ext(dataplane.ExtensionEnable),
		JobProjectExtensionDisable: ext(dataplane.ExtensionDisable),
		JobProjectExtensionUpdate:  ext(dataplane.ExtensionUpdate),
		JobProjectUpgradeMinor: &settingsHandler{s: s, run: func(ctx context.Context, p *store.Project, c *dataplane.Cluster, j *queue.Job) (any, error) {
			running, installed, err := c.MinorVersions(ctx)
			if err != nil {
				return nil, err
			}
			if running != installed {
				return nil, queue.PermanentError(fmt.Errorf("the cluster runs PostgreSQL %s and %s is installed: "+
					"on a shared cluster the operator restarts it to finish the minor upgrade", running, installed))
			}
			return wire.MinorUpgradeJobResult{CurrentVersion: running, NewestInstalledVersion: installed, Upgraded: false}, nil
		}},
	}
}

// StorageReadOnly is the usage sampler's optional switch at 100 % storage
// (observe.Config.ReadOnly; capydb server --readonly-at-full-storage): the
// same instance.set_readonly job a project owner queues, on at 100 % and off
// again below 95 %.
func (s *Service) StorageReadOnly(ctx context.Context, projectID string, on bool) error {
	p, err := store.GetProjectAny(ctx, s.Store.Pool, projectID)
	if err != nil {
		return err
	}
	_, err = s.SetReadOnly(ctx, p, on, false, Actor{Kind: "system", ID: "storage_watch"})
	return err
}
