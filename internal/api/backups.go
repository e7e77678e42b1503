package api

import (
	"context"
	"net/http"
	"unicode/utf8"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// Backup is the wire form of a backup.
type Backup = wire.Backup

func toBackup(b *store.Backup) *Backup {
	return &Backup{ID: b.ID, ProjectID: b.ProjectID, BackupKey: b.BackupKey, DatabaseName: b.DatabaseName, Label: b.Label,
		State: b.State, SizeBytes: b.SizeBytes, VerificationState: b.VerificationState, VerifiedAt: utcp(b.VerifiedAt),
		VerificationError: b.VerificationError, Kind: b.Kind, ChecksumSHA256: b.ChecksumSHA256, ExpiresAt: utcp(b.ExpiresAt),
		JobID: b.JobID, CreatedAt: b.CreatedAt.UTC()}
}

// ScheduledBackup is the wire form of a backup schedule.
type ScheduledBackup = wire.ScheduledBackup

func toSchedule(sc *store.BackupSchedule) *ScheduledBackup {
	return &ScheduledBackup{ID: sc.ID, OrganizationID: sc.OrganizationID, ProjectID: sc.ProjectID, CronHour: sc.CronHour,
		CronMinute: sc.CronMinute, IsActive: sc.IsActive, Label: sc.Label, RetentionDays: sc.RetentionDays,
		LastJobID: sc.LastJobID, LastRunAt: utcp(sc.LastRunAt), CreatedAt: sc.CreatedAt.UTC(), UpdatedAt: sc.UpdatedAt.UTC()}
}

// CreateBackupRequest is POST /v1/projects/{projectID}/backups.
type CreateBackupRequest struct {
	Label string `json:"label,omitempty" doc:"at most 120 characters"`
}

// CreateBackupInput wraps the optional body.
type CreateBackupInput struct {
	ProjectID string               `path:"projectID"`
	Body      *CreateBackupRequest `required:"false"`
}

// UpsertScheduledBackupRequest is a full replacement of the default schedule.
type UpsertScheduledBackupRequest struct {
	CronHour      *int   `json:"cron_hour" required:"true" nullable:"false" doc:"UTC hour, 0-23"`
	CronMinute    *int   `json:"cron_minute" required:"true" nullable:"false" doc:"0-59"`
	IsActive      *bool  `json:"is_active" required:"true" nullable:"false"`
	Label         string `json:"label,omitempty" doc:"at most 120 characters"`
	RetentionDays int    `json:"retention_days,omitempty" doc:"1-365; 0 or absent = 7"`
}

// UpsertScheduleInput wraps it.
type UpsertScheduleInput struct {
	ProjectID string `path:"projectID"`
	Body      UpsertScheduledBackupRequest
}

func (s *Server) registerBackups() {
	tags := []string{"backups"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listBackups", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/backups", Scope: auth.ScopeBackupsRead},
		Summary: "List a project's backups, newest first", Tags: tags}, s.listBackups)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createBackup", Method: http.MethodPost,
		Path: "/v1/projects/{projectID}/backups", Scope: auth.ScopeBackupsWrite}, Status: http.StatusAccepted,
		Summary: "Take a verified logical backup of the project", Tags: tags}, s.createBackup)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listScheduledBackups", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/scheduled-backups", Scope: auth.ScopeBackupsRead},
		Summary: "Get the project's backup schedule (zero or one)", Tags: tags}, s.listScheduledBackups)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "upsertScheduledBackup", Method: http.MethodPut,
		Path: "/v1/projects/{projectID}/scheduled-backups/default", Scope: auth.ScopeBackupsWrite},
		Summary: "Replace the project's daily backup schedule", Tags: tags}, s.upsertScheduledBackup)
}

type backupListOut struct {
	Body struct {
		Backups []*Backup `json:"backups"`
	}
}

type backupSchedulesOut struct {
	Body struct {
		Schedules []*ScheduledBackup `json:"scheduled_backups"`
	}
}

type backupScheduleOut struct {
	Body struct {
		Schedule *ScheduledBackup `json:"scheduled_backup"`
	}
}

func (s *Server) listBackups(ctx context.Context, in *ProjectPath) (*backupListOut, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	list, err := store.ListBackups(ctx, s.deps.Store.Pool, p.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &backupListOut{}
	out.Body.Backups = make([]*Backup, 0, len(list))
	for _, b := range list {
		out.Body.Backups = append(out.Body.Backups, toBackup(b))
	}
	return out, nil
}

func (s *Server) createBackup(ctx context.Context, in *CreateBackupInput) (*JobOutput, error) {
	label := ""
	if in.Body != nil {
		label = in.Body.Label
	}
	if utf8.RuneCountInString(label) > lifecycle.MaxLabelLen {
		return nil, errorf(http.StatusBadRequest, "label must be at most %d characters", lifecycle.MaxLabelLen)
	}
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	_, job, err := s.deps.Lifecycle.CreateBackup(ctx, p.OrganizationID, p.ID, label, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

func (s *Server) listScheduledBackups(ctx context.Context, in *ProjectPath) (*backupSchedulesOut, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	list, err := store.ListBackupSchedules(ctx, s.deps.Store.Pool, p.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &backupSchedulesOut{}
	out.Body.Schedules = make([]*ScheduledBackup, 0, len(list))
	for _, sc := range list {
		out.Body.Schedules = append(out.Body.Schedules, toSchedule(sc))
	}
	return out, nil
}

func (s *Server) upsertScheduledBackup(ctx context.Context, in *UpsertScheduleInput) (*backupScheduleOut, error) {
	b := in.Body
	switch {
	case b.CronHour == nil || *b.CronHour < 0 || *b.CronHour > 23:
		return nil, errorf(http.StatusBadRequest, "cron_hour must be between 0 and 23")
	case b.CronMinute == nil || *b.CronMinute < 0 || *b.CronMinute > 59:
		return nil, errorf(http.StatusBadRequest, "cron_minute must be between 0 and 59")
	case b.IsActive == nil:
		return nil, errorf(http.StatusBadRequest, "is_active is required")
	case utf8.RuneCountInString(b.Label) > lifecycle.MaxLabelLen:
		return nil, errorf(http.StatusBadRequest, "label must be at most %d characters", lifecycle.MaxLabelLen)
	case b.RetentionDays < 0 || b.RetentionDays > 365:
		return nil, errorf(http.StatusBadRequest, "retention_days must be between 1 and 365")
	}
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	sc, err := s.deps.Lifecycle.UpsertSchedule(ctx, p.OrganizationID, p.ID, lifecycle.ScheduleParams{
		CronHour: *b.CronHour, CronMinute: *b.CronMinute, IsActive: *b.IsActive, Label: b.Label,
		RetentionDays: b.RetentionDays}, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &backupScheduleOut{}
	out.Body.Schedule = toSchedule(sc)
	return out, nil
}
