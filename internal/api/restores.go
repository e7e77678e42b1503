package api

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// CreateRestoreRequest is POST /v1/projects/{projectID}/restores.
type CreateRestoreRequest = wire.CreateRestoreRequest

// CreateRestoreInput wraps it.
type CreateRestoreInput struct {
	ProjectID string `path:"projectID"`
	Body      CreateRestoreRequest
}

// RestorePoint is the wire form of a restore point.
type RestorePoint = wire.RestorePoint

// toRestorePoint gives r's wire form; a pitr point is expired once its time
// is before earliest (the window's start; zero = no window).
func toRestorePoint(r *store.RestorePoint, earliest time.Time) *RestorePoint {
	state := "active"
	if r.BackupState != nil && *r.BackupState == store.BackupExpired {
		state = "expired"
	}
	if r.Kind == "pitr" && r.PITRTime != nil && (earliest.IsZero() || r.PITRTime.Before(earliest)) {
		state = "expired"
	}
	return &RestorePoint{ID: r.ID, OrganizationID: r.OrganizationID, ProjectID: r.ProjectID, Label: r.Label, Kind: r.Kind,
		BackupID: r.BackupID, BackupKey: r.BackupKey, PITRTime: utcp(r.PITRTime), Note: r.Note, State: state,
		CreatedByActorKind: r.CreatedByActorKind, CreatedByActorID: r.CreatedByActorID,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// CreateRestorePointRequest is POST /v1/projects/{projectID}/restore-points.
type CreateRestorePointRequest = wire.CreateRestorePointRequest

// CreateRestorePointInput wraps it.
type CreateRestorePointInput struct {
	ProjectID string `path:"projectID"`
	Body      CreateRestorePointRequest
}

// RestorePointPath names a restore point.
type RestorePointPath struct {
	ProjectID      string `path:"projectID"`
	RestorePointID string `path:"restorePointID"`
}

func (s *Server) registerRestores() {
	tags := []string{"restores"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createRestore", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/restores", Scope: auth.ScopeBackupsWrite}, Status: http.StatusAccepted,
		Summary: "Restore a backup into a new preview, a preview or the project", Tags: tags,
		Errors: []int{http.StatusGone, http.StatusPreconditionRequired}}, s.createRestore)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listRestorePoints", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/restore-points", Scope: auth.ScopeBackupsRead},
		Summary: "List the project's restore points, newest first", Tags: tags}, s.listRestorePoints)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createRestorePoint", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/restore-points", Scope: auth.ScopeBackupsWrite}, Status: http.StatusCreated,
		Summary: "Pin a named restore point to a backup", Tags: tags}, s.createRestorePoint)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "deleteRestorePoint", Method: http.MethodDelete,
		Path: "/v1/projects/{projectID}/restore-points/{restorePointID}", Scope: auth.ScopeBackupsWrite},
		Summary: "Delete a restore point (its backup stays)", Tags: tags}, s.deleteRestorePoint)
}

type restoreCreateOut struct {
	Body struct {
		Job  *Job                    `json:"job"`
		PITR *wire.PITRRestoreTarget `json:"pitr,omitempty" doc:"present when the source was a point in time"`
	}
}

type restorePointsOut struct {
	Body struct {
		RestorePoints  []*RestorePoint `json:"restore_points"`
		PITRWindowDays int             `json:"pitr_window_days"`
	}
}

type restorePointOut struct {
	Body struct {
		RestorePoint *RestorePoint `json:"restore_point"`
	}
}

type restorePointDeletedOut struct {
	Body struct {
		Deleted bool `json:"deleted"`
	}
}

func (s *Server) createRestore(ctx context.Context, in *CreateRestoreInput) (*restoreCreateOut, error) {
	b := in.Body
	n := 0
	for _, v := range []string{b.BackupKey, b.RestoreTime, b.RestorePointID} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return nil, errorf(http.StatusBadRequest, "exactly one of backup_key, restore_time or restore_point_id is required")
	}
	var restoreTime *time.Time
	if b.RestoreTime != "" {
		t, err := time.Parse(time.RFC3339, b.RestoreTime)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "restore_time must be an RFC 3339 time")
		}
		restoreTime = &t
	}
	kind := b.TargetKind
	if kind == "" {
		kind = lifecycle.TargetNewPreview
	}
	switch kind {
	case lifecycle.TargetNewPreview:
		if b.PreviewID != "" || b.ApprovalToken != "" {
			return nil, errorf(http.StatusBadRequest, "%s does not apply to target_kind new_preview", firstSet(map[string]string{"preview_id": b.PreviewID, "approval_token": b.ApprovalToken}))
		}
		if b.TTLHours != 0 && (b.TTLHours < 1 || b.TTLHours > lifecycle.MaxPreviewTTLHours) {
			return nil, errorf(http.StatusBadRequest, "ttl_hours must be between 1 and %d", lifecycle.MaxPreviewTTLHours)
		}
		if b.PreviewName != "" && !lifecycle.ValidPreviewName(b.PreviewName) {
			return nil, errorf(http.StatusBadRequest, "preview_name must be 1-63 letters, digits, -, _ or ., starting with a letter or digit")
		}
	case lifecycle.TargetPreview:
		if b.PreviewID == "" {
			return nil, errorf(http.StatusBadRequest, "preview_id is required for target_kind preview")
		}
		if f := firstSet(map[string]string{"preview_name": b.PreviewName, "approval_token": b.ApprovalToken, "ttl_hours": nonZero(b.TTLHours)}); f != "" {
			return nil, errorf(http.StatusBadRequest, "%s does not apply to target_kind preview", f)
		}
	case lifecycle.TargetProject:
		if f := firstSet(map[string]string{"preview_name": b.PreviewName, "preview_id": b.PreviewID, "ttl_hours": nonZero(b.TTLHours)}); f != "" {
			return nil, errorf(http.StatusBadRequest, "%s does not apply to target_kind project", f)
		}
	default:
		return nil, errorf(http.StatusBadRequest, "target_kind must be new_preview, preview or project")
	}
	p, org, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	if kind == lifecycle.TargetProject {
		if pr := principal(ctx); pr.AuthSource != "api_key" && !pr.IsAdmin() {
			return nil, errorf(http.StatusForbidden, "this action requires the organization admin role")
		}
	}
	job, pt, err := s.deps.Lifecycle.CreateRestore(ctx, org, p.ID, lifecycle.RestoreParams{
		BackupKey: b.BackupKey, RestorePointID: b.RestorePointID, TargetKind: kind, PreviewID: b.PreviewID,
		PreviewName: b.PreviewName, TTLHours: b.TTLHours, ApprovalToken: b.ApprovalToken,
		AllowUnverified: b.AllowUnverifiedBackup, RestoreTime: restoreTime}, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &restoreCreateOut{}
	out.Body.Job = toJob(job)
	if pt != nil {
		out.Body.PITR = &wire.PITRRestoreTarget{RequestedRestoreTime: pt.Requested, RestoreTime: pt.Effective,
			RestoreTimeClamped: pt.Clamped}
	}
	return out, nil
}

func (s *Server) listRestorePoints(ctx context.Context, in *ProjectPath) (*restorePointsOut, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	list, err := store.ListRestorePoints(ctx, s.deps.Store.Pool, p.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	w, err := s.deps.Lifecycle.ProjectPITRWindow(ctx, p)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &restorePointsOut{}
	var earliest time.Time
	if w != nil {
		out.Body.PITRWindowDays, earliest = w.Days, w.Earliest
	}
	out.Body.RestorePoints = make([]*RestorePoint, 0, len(list))
	for _, r := range list {
		out.Body.RestorePoints = append(out.Body.RestorePoints, toRestorePoint(r, earliest))
	}
	return out, nil
}

func (s *Server) createRestorePoint(ctx context.Context, in *CreateRestorePointInput) (*restorePointOut, error) {
	b := in.Body
	if n := utf8.RuneCountInString(strings.TrimSpace(b.Label)); n < 1 || utf8.RuneCountInString(b.Label) > lifecycle.MaxLabelLen {
		return nil, errorf(http.StatusBadRequest, "label is required and must be at most %d characters", lifecycle.MaxLabelLen)
	}
	if utf8.RuneCountInString(b.Note) > 1000 {
		return nil, errorf(http.StatusBadRequest, "note must be at most 1000 characters")
	}
	kind := b.Kind
	if kind == "snapshot" {
		kind = "pitr"
	}
	if kind == "" {
		kind = "pitr"
		if b.BackupKey != "" {
			kind = "backup"
		}
	}
	var pitrTime *time.Time
	switch kind {
	case "pitr":
		if b.BackupKey != "" {
			return nil, errorf(http.StatusBadRequest, "backup_key does not apply to kind pitr")
		}
		if b.PITRTime != "" {
			t, err := time.Parse(time.RFC3339, b.PITRTime)
			if err != nil {
				return nil, errorf(http.StatusBadRequest, "pitr_time must be an RFC 3339 time")
			}
			pitrTime = &t
		}
	case "backup":
		if b.PITRTime != "" {
			return nil, errorf(http.StatusBadRequest, "pitr_time does not apply to kind backup")
		}
		if b.BackupKey == "" {
			return nil, errorf(http.StatusBadRequest, "backup_key is required for kind backup")
		}
	default:
		return nil, errorf(http.StatusBadRequest, "kind must be backup or pitr")
	}
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	a := actor(ctx)
	if a.Kind == "" {
		a.Kind = "system"
	}
	rp := &store.RestorePoint{ID: ids.New("rp_"), OrganizationID: p.OrganizationID, ProjectID: p.ID, Label: b.Label,
		Kind: kind, CreatedByActorKind: a.Kind}
	if kind == "pitr" {
		t, err := s.deps.Lifecycle.PITRRestorePoint(ctx, p, pitrTime)
		if err != nil {
			return nil, s.fail(ctx, err, "")
		}
		rp.PITRTime = &t
	} else {
		bk, err := store.GetBackupByKey(ctx, s.deps.Store.Pool, p.ID, b.BackupKey)
		if err != nil {
			return nil, s.fail(ctx, err, "backup not found")
		}
		if bk.State != store.BackupCompleted {
			return nil, errorf(http.StatusConflict, "backup is not completed (state %s)", bk.State)
		}
		rp.BackupID = &bk.ID
	}
	if a.ID != "" {
		rp.CreatedByActorID = &a.ID
	}
	if b.Note != "" {
		rp.Note = &b.Note
	}
	if err := s.deps.Lifecycle.CreateRestorePoint(ctx, rp, a); err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	got, err := store.GetRestorePoint(ctx, s.deps.Store.Pool, p.ID, rp.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	var earliest time.Time
	if w, err := s.deps.Lifecycle.ProjectPITRWindow(ctx, p); err == nil && w != nil {
		earliest = w.Earliest
	}
	out := &restorePointOut{}
	out.Body.RestorePoint = toRestorePoint(got, earliest)
	return out, nil
}

func (s *Server) deleteRestorePoint(ctx context.Context, in *RestorePointPath) (*restorePointDeletedOut, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	if err := s.deps.Lifecycle.DeleteRestorePoint(ctx, p, in.RestorePointID, actor(ctx)); err != nil {
		return nil, s.fail(ctx, err, "restore point not found")
	}
	out := &restorePointDeletedOut{}
	out.Body.Deleted = true
	return out, nil
}

func firstSet(m map[string]string) string {
	for _, k := range []string{"preview_id", "preview_name", "ttl_hours", "approval_token"} {
		if m[k] != "" {
			return k
		}
	}
	return ""
}

func nonZero(n int) string {
	if n == 0 {
		return ""
	}
	return "set"
}
