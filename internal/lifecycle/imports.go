package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/netguard"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// UploadTTL is how long an import upload slot accepts its PUT.
const UploadTTL = 60 * time.Minute

func (s *Service) importGuard() *netguard.Guard { return s.cfg.ImportGuard }

// CheckSourceURL validates an import source URL and returns it with
// sslmode=require added when it names no sslmode. Hosts are checked against
// the outbound address rules (resolved now; checked again when connecting).
func (s *Service) CheckSourceURL(ctx context.Context, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "", invalidf("source_url must be a postgres:// or postgresql:// URL with a host")
	}
	q := u.Query()
	if q.Has("host") || q.Has("hostaddr") || strings.HasPrefix(u.Host, "%2F") || strings.Contains(u.Host, "/") {
		return "", invalidf("host is not allowed")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" || strings.Contains(u.Host, ",") {
		return "", invalidf("host is not allowed")
	}
	if port == "6543" || strings.Contains(strings.ToLower(host), "-pooler.") {
		return "", invalidf("host is not allowed: transaction-pooler endpoints cannot carry an import; use the direct or session endpoint")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", invalidf("source_url has an invalid port")
		}
	}
	g := s.importGuard()
	if err := g.CheckName(host); err != nil {
		return "", invalidf("host is not allowed")
	}
	if _, err := g.Resolve(ctx, host); err != nil {
		if errors.Is(err, netguard.ErrNotAllowed) {
			return "", invalidf("host is not allowed")
		}
		// Unresolvable names are reported by the reachability check.
	}
	if !q.Has("sslmode") {
		q.Set("sslmode", "require")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// PreflightCheck is one graded check.
type PreflightCheck struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// SourceExtension is an installed source extension.
type SourceExtension struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// SourceReplication is the source's readiness for a follow import.
type SourceReplication struct {
	Ready               bool     `json:"ready"`
	WALLevel            string   `json:"wal_level"`
	MaxReplicationSlots int      `json:"max_replication_slots"`
	UsedReplicationSlot int      `json:"used_replication_slots"`
	MaxWALSenders       int      `json:"max_wal_senders"`
	RoleCanReplicate    bool     `json:"role_can_replicate"`
	Blockers            []string `json:"blockers"`
}

// SourceInspection is what the preflight found.
type SourceInspection struct {
	ServerVersion     string            `json:"server_version"`
	DatabaseSizeBytes int64             `json:"database_size_bytes"`
	Extensions        []SourceExtension `json:"extensions"`
	Replication       SourceReplication `json:"replication"`
	AppSchemas        []string          `json:"app_schemas,omitempty"`
	EventTriggers     []string          `json:"event_triggers,omitempty"`
	Provider          string            `json:"provider,omitempty"`
}

// PreflightResult grades an import source.
type PreflightResult struct {
	OK                bool             `json:"ok"`
	Checks            []PreflightCheck `json:"checks"`
	Source            SourceInspection `json:"source"`
	StorageLimitBytes int64            `json:"storage_limit_bytes"`
	TargetVersion     string           `json:"target_version"`
}

// scrubURLError removes the password of sourceURL from an error message.
func scrubURLError(err error, sourceURL string) string {
	msg := err.Error()
	if u, perr := url.Parse(sourceURL); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "***")
		}
	}
	return msg
}

// Preflight inspects the source (dataplane.InspectSource; addresses checked
// at connect time) and grades the import. Nothing is written.
func (s *Service) Preflight(ctx context.Context, org *store.Organization, p *store.Project, sourceURL string) (*PreflightResult, error) {
	limits := PlanFor(org)
	res := &PreflightResult{Checks: []PreflightCheck{}, StorageLimitBytes: limits.StorageLimitBytes, TargetVersion: p.PostgresVersion,
		Source: SourceInspection{Extensions: []SourceExtension{}}}
	g := s.importGuard()
	facts, err := dataplane.InspectSource(ctx, dataplane.SourceConfig{URL: sourceURL, Dial: g.DialContext,
		Lookup: func(ctx context.Context, host string) ([]string, error) {
			addrs, err := g.Resolve(ctx, host)
			if err != nil {
				return nil, err
			}
			out := make([]string, len(addrs))
			for i, a := range addrs {
				out[i] = a.String()
			}
			return out, nil
		}})
	var unreachable *dataplane.UnreachableError
	switch {
	case errors.Is(err, dataplane.ErrInvalidSourceURL):
		return nil, invalidf("source_url is not a valid connection URL")
	case errors.As(err, &unreachable):
		res.Checks = append(res.Checks, PreflightCheck{Name: "source_reachable", Status: "fail", Detail: scrubURLError(unreachable.Err, sourceURL)})
		return res, nil
	case err != nil:
		return nil, err
	}
	res.Checks = append(res.Checks, PreflightCheck{Name: "source_reachable", Status: "pass"})
	src := &res.Source
	major := facts.Major
	src.ServerVersion, src.DatabaseSizeBytes = facts.ServerVersion, facts.DatabaseSizeBytes
	exts := make([]SourceExtension, 0, len(facts.Extensions))
	for _, e := range facts.Extensions {
		exts = append(exts, SourceExtension{Name: e.Name, Version: e.Version})
	}
	src.Extensions = exts
	src.AppSchemas, src.EventTriggers = facts.AppSchemas, facts.EventTriggers
	src.Replication = SourceReplication{WALLevel: facts.WALLevel, MaxReplicationSlots: facts.MaxReplicationSlots,
		MaxWALSenders: facts.MaxWALSenders, UsedReplicationSlot: facts.UsedReplicationSlots,
		RoleCanReplicate: facts.RoleCanReplicate, Blockers: []string{}}
	slotsUsed := facts.UsedReplicationSlots
	if src.Replication.WALLevel != "logical" {
		src.Replication.Blockers = append(src.Replication.Blockers, "wal_level is "+src.Replication.WALLevel+", not logical")
	}
	if slotsUsed >= src.Replication.MaxReplicationSlots {
		src.Replication.Blockers = append(src.Replication.Blockers, "no free replication slot")
	}
	src.Replication.Blockers = append(src.Replication.Blockers, replicationBlockers(facts)...)
	src.Replication.Ready = len(src.Replication.Blockers) == 0
	src.Provider = "other"

	size := PreflightCheck{Name: "source_size_within_plan", Status: "pass"}
	switch {
	case src.DatabaseSizeBytes > limits.StorageLimitBytes:
		size.Status, size.Detail = "fail", fmt.Sprintf("source is %d bytes; the plan allows %d", src.DatabaseSizeBytes, limits.StorageLimitBytes)
	case src.DatabaseSizeBytes*10 > limits.StorageLimitBytes*8:
		size.Status, size.Detail = "warn", fmt.Sprintf("source is %d bytes, above 80%% of the plan's %d", src.DatabaseSizeBytes, limits.StorageLimitBytes)
	}
	ver := PreflightCheck{Name: "source_version_compatible", Status: "pass"}
	if target, err := strconv.Atoi(strings.Split(p.PostgresVersion, ".")[0]); err == nil && major > target {
		ver.Status, ver.Detail = "fail", fmt.Sprintf("source major %d is newer than the project's %d", major, target)
	}
	extCheck := PreflightCheck{Name: "extensions_available_on_target", Status: "pass"}
	var available []string
	if c, err := s.Cluster(p.ClusterID); err == nil {
		available, _ = c.Extensions(ctx)
	}
	var missing []string
	for _, e := range exts {
		if !slices.Contains(dataplane.AllowedExtensions, e.Name) || (available != nil && !slices.Contains(available, e.Name)) {
			missing = append(missing, e.Name)
		}
	}
	if len(missing) > 0 {
		extCheck.Status, extCheck.Detail = "fail", "not available here: "+strings.Join(missing, ", ")
	}
	res.Checks = append(res.Checks, size, ver, extCheck)
	res.OK = true
	for _, c := range res.Checks {
		if c.Status == "fail" {
			res.OK = false
		}
	}
	return res, nil
}

// CreateUpload makes a one-time upload slot for a dump file.
func (s *Service) CreateUpload(ctx context.Context, org *store.Organization, projectID string, actor Actor) (*store.ImportUpload, error) {
	var u *store.ImportUpload
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, org.ID, projectID)
		if err != nil {
			return err
		}
		if p.State == store.ProjectDeleting {
			return conflictf("project is being deleted")
		}
		u = &store.ImportUpload{ObjectKey: blobstore.Key(p.ID, "uploads", ids.New("upl_")), OrganizationID: org.ID,
			ProjectID: p.ID, MaxBytes: PlanFor(org).StorageLimitBytes, ExpiresAt: time.Now().Add(UploadTTL)}
		if err := store.InsertImportUpload(ctx, tx, u); err != nil {
			return err
		}
		return audit(ctx, tx, org.ID, p.ID, "project.import_upload_created", actor, map[string]any{"object_key": u.ObjectKey})
	})
	return u, err
}

// ImportParams is a validated import request.
type ImportParams struct {
	SourceURL string // already checked by CheckSourceURL
	UploadKey string
	Recreate  bool
}

type importPayload struct {
	SourceURLEnc []byte `json:"source_url_enc,omitempty"`
	UploadKey    string `json:"upload_key,omitempty"`
	Recreate     bool   `json:"recreate"`
}

// CreateImport marks the project importing and queues project.import; the
// source URL (it holds a password) travels encrypted in the payload.
func (s *Service) CreateImport(ctx context.Context, org *store.Organization, projectID string, in ImportParams, actor Actor) (*queue.Job, error) {
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, org.ID, projectID)
		if err != nil {
			return err
		}
		payload := importPayload{UploadKey: in.UploadKey, Recreate: in.Recreate}
		if in.UploadKey != "" {
			u, err := store.GetImportUpload(ctx, tx, p.ID, in.UploadKey)
			if err != nil || time.Now().After(u.ExpiresAt) {
				return invalidf("upload_key is unknown or the upload is not complete")
			}
			if u.CompletedAt == nil {
				// A presigned upload went straight to the object store.
				ok := false
				if s.cfg.Blob != nil && s.cfg.Blob.Presigns {
					ok, _ = s.cfg.Blob.Exists(ctx, u.ObjectKey)
				}
				if !ok {
					return invalidf("upload_key is unknown or the upload is not complete")
				}
			}
		} else {
			payload.SourceURLEnc = s.seal(in.SourceURL)
		}
		if p.State != store.ProjectReady {
			return conflictf("project is not ready (state %s)", p.State)
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{Type: JobProjectImport, OrganizationID: org.ID, ProjectID: p.ID,
			ClusterID: p.ClusterID, LockedResource: "project:" + p.ID, Payload: payload, MaxAttempts: 2})
		if err != nil {
			return err
		}
		if err := store.BeginProjectImport(ctx, tx, p.ID, job.ID); err != nil {
			return err
		}
		src := "upload"
		if in.SourceURL != "" {
			src = "url"
		}
		return audit(ctx, tx, org.ID, p.ID, "project.import_started", actor, map[string]any{"job_id": job.ID, "source": src, "recreate": in.Recreate})
	})
	return job, err
}

// AuditPreflight records that a preflight ran.
func (s *Service) AuditPreflight(ctx context.Context, p *store.Project, ok bool, actor Actor) error {
	return audit(ctx, s.Store.Pool, p.OrganizationID, p.ID, "project.import_preflight", actor, map[string]any{"ok": ok})
}

// replicationBlockers says what else a follow import needs from the source
// (docs/imports.md, "Follow imports"): a free WAL sender, a login that may
// replicate, a replica identity on every table, and no trigger that would
// fire while changes are applied (the apply worker runs as a superuser on
// Postgres 15, so such a trigger would run tenant code with its rights).
func replicationBlockers(f *dataplane.SourceFacts) []string {
	var out []string
	if f.MaxWALSenders > 0 && f.UsedWALSenders >= f.MaxWALSenders {
		out = append(out, "no free WAL sender (max_wal_senders is "+strconv.Itoa(f.MaxWALSenders)+")")
	}
	if !f.RoleCanReplicate {
		out = append(out, "the source login lacks the REPLICATION attribute (ALTER ROLE ... REPLICATION)")
	}
	if len(f.NoReplicaIdentity) > 0 {
		out = append(out, "tables without a primary key or replica identity (add one, or ALTER TABLE ... REPLICA IDENTITY FULL): "+
			strings.Join(f.NoReplicaIdentity, ", "))
	}
	if len(f.ApplyTriggers) > 0 {
		out = append(out, "triggers that would fire while changes are applied (ALTER TABLE ... ENABLE TRIGGER ... to make them ordinary): "+
			strings.Join(f.ApplyTriggers, ", "))
	}
	return out
}
