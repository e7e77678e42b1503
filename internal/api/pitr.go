package api

import (
	"context"
	"net/http"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/wire"
)

type pitrStatusOut struct {
	Body *wire.PITRStatus
}

func (s *Server) registerPITR() {
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getProjectPITR", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/pitr", Scope: auth.ScopeBackupsRead},
		Summary: "Point-in-time recovery status of the project",
		Description: "† (self-hosted addition) The restorable window of the project (earliest restorable second, " +
			"when WAL last reached the repository), the WAL archiver's health and the last base backup.",
		Tags: []string{"restores"}}, s.getPITR)
}

func (s *Server) getPITR(ctx context.Context, in *ProjectPath) (*pitrStatusOut, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	out := &pitrStatusOut{Body: &wire.PITRStatus{}}
	w, err := s.deps.Lifecycle.ProjectPITRWindow(ctx, p)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if w == nil {
		return out, nil
	}
	st := out.Body
	st.Enabled, st.WindowDays, st.BaseBackups = true, w.Days, w.Backups
	if !w.Earliest.IsZero() {
		e := w.Earliest.UTC()
		st.EarliestRestoreTime = &e
	}
	if b := w.Last; b != nil {
		st.LastBaseBackup = &wire.PITRBaseBackup{Label: b.Label, Type: b.Type, StartedAt: b.StartedAt, StoppedAt: b.StoppedAt,
			SizeBytes: b.SizeBytes, RepoBytes: b.RepoBytes}
	}
	a, err := s.deps.Lifecycle.PITRFor(p).Archiver(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	st.LatestArchivedTime, st.ArchiverHealthy, st.ArchivedCount = utcp(a.LastArchivedAt), a.Healthy, a.ArchivedCount
	st.FailedCount, st.LastFailedWAL, st.LastFailedAt = a.FailedCount, a.LastFailedWAL, utcp(a.LastFailedAt)
	return out, nil
}
