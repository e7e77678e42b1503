package lifecycle

import (
	"context"
	"time"

	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/pitr"
	"github.com/capydb/capydb/internal/store"
)

// JobPITRRestore restores a project's database to a point in time.
const JobPITRRestore = "instance.pitr_restore"

// errNoPITR is the answer wherever a project's cluster has no archiving.
var errNoPITR = domainerr.New(domainerr.Invalid, "point-in-time recovery is not available for this project")

// AttachPITR turns on point-in-time recovery for the cluster clusterID.
func (s *Service) AttachPITR(clusterID string, m *pitr.Manager) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pitrCluster, s.pitr = clusterID, m
}

// PITRFor is the project's cluster's PITR manager, or nil.
func (s *Service) PITRFor(p *store.Project) *pitr.Manager {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.pitr == nil || p.ClusterID != s.pitrCluster {
		return nil
	}
	return s.pitr
}

// PITRWindow is a project's restorable window.
type PITRWindow struct {
	Days     int
	Earliest time.Time // zero: no base backup yet
	Backups  int
	Last     *pitr.BaseBackup
}

// ProjectPITRWindow reads the window of p (nil when p's cluster has no PITR).
// The earliest point is the later of the oldest base backup's stop, the
// window's start and the project's creation.
func (s *Service) ProjectPITRWindow(ctx context.Context, p *store.Project) (*PITRWindow, error) {
	m := s.PITRFor(p)
	if m == nil {
		return nil, nil
	}
	w, err := m.Window(ctx)
	if err != nil {
		return nil, err
	}
	out := &PITRWindow{Days: m.WindowDays(), Backups: w.Backups, Last: w.LastBackup}
	if w.Backups == 0 {
		return out, nil
	}
	out.Earliest = w.Earliest
	if c := p.CreatedAt.UTC().Truncate(time.Second).Add(time.Second); c.After(out.Earliest) {
		out.Earliest = c
	}
	if ws := time.Now().UTC().Add(-time.Duration(m.WindowDays()) * 24 * time.Hour); ws.After(out.Earliest) {
		out.Earliest = ws.Truncate(time.Second).Add(time.Second)
	}
	return out, nil
}

// PITRTarget is a point in time a restore resolved to.
type PITRTarget struct {
	Requested time.Time
	Effective time.Time
	Clamped   bool
}

// resolvePITR checks a requested time against p's window and clamps it to
// the latest restorable point, which it first makes current (a heartbeat
// commit after it, archived): a time target needs a later commit.
// field names the request's time ("" for a restore point's: then a time
// before the window means the point expired, 410).
func (s *Service) resolvePITR(ctx context.Context, p *store.Project, requested time.Time, field string) (*PITRTarget, error) {
	m := s.PITRFor(p)
	if m == nil {
		return nil, errNoPITR
	}
	w, err := s.ProjectPITRWindow(ctx, p)
	if err != nil {
		return nil, err
	}
	if w.Backups == 0 {
		return nil, invalidf("point-in-time recovery has no base backup yet: the window opens when the first one ends")
	}
	requested = requested.UTC()
	if requested.Before(w.Earliest) {
		if field == "" {
			return nil, domainerr.New(domainerr.Gone, "restore point has expired")
		}
		return nil, invalidf("%s is before the earliest restorable point %s", field, w.Earliest.Format(time.RFC3339))
	}
	latest, err := m.Mark(ctx)
	if err != nil {
		return nil, domainerr.Errorf(domainerr.Unavailable, "WAL archiving is not keeping up, so the latest restorable point is unknown: %v", err)
	}
	t := &PITRTarget{Requested: requested, Effective: requested}
	if requested.After(latest) {
		t.Effective, t.Clamped = latest, true
	}
	return t, nil
}

// databaseOID is the OID of p's current database (its incarnation).
func (s *Service) databaseOID(ctx context.Context, p *store.Project, db string) (uint32, error) {
	c, err := s.Cluster(p.ClusterID)
	if err != nil {
		return 0, err
	}
	return c.DatabaseOID(ctx, db)
}

// PITRRestorePoint resolves the time of a new restore point of kind pitr:
// now (made restorable) when at is nil, else at, which must lie in the
// window and not in the future.
func (s *Service) PITRRestorePoint(ctx context.Context, p *store.Project, at *time.Time) (time.Time, error) {
	m := s.PITRFor(p)
	if m == nil {
		return time.Time{}, errNoPITR
	}
	if at == nil {
		w, err := s.ProjectPITRWindow(ctx, p)
		if err != nil {
			return time.Time{}, err
		}
		if w.Backups == 0 {
			return time.Time{}, invalidf("point-in-time recovery has no base backup yet: the window opens when the first one ends")
		}
		now, err := m.Mark(ctx)
		if err != nil {
			return time.Time{}, domainerr.Errorf(domainerr.Unavailable, "WAL archiving is not keeping up: %v", err)
		}
		return now, nil
	}
	if at.After(time.Now()) {
		return time.Time{}, invalidf("pitr_time must not be in the future")
	}
	t, err := s.resolvePITR(ctx, p, *at, "pitr_time")
	if err != nil {
		return time.Time{}, err
	}
	return t.Effective, nil
}
