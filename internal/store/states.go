package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Project states.
const (
	ProjectProvisioning = "provisioning"
	ProjectReady        = "ready"
	ProjectRestoring    = "restoring"
	ProjectImporting    = "importing"
	ProjectDeleting     = "deleting"
	ProjectFailed       = "failed"
)

// Preview states.
const (
	PreviewProvisioning = "provisioning"
	PreviewReady        = "ready"
	PreviewResetting    = "resetting"
	PreviewDeleting     = "deleting"
	PreviewFailed       = "failed"
)

// Backup states (exports use the same four).
const (
	BackupRunning   = "running"
	BackupCompleted = "completed"
	BackupFailed    = "failed"
	BackupExpired   = "expired"
)

// Rows that move through states.
const (
	EntityProject = "project"
	EntityPreview = "preview"
	EntityBackup  = "backup"
	EntityExport  = "export"
)

// EntityStates lists every state of each entity (the transition test walks them).
var EntityStates = map[string][]string{
	EntityProject: {ProjectProvisioning, ProjectReady, ProjectRestoring, ProjectImporting, ProjectDeleting, ProjectFailed},
	EntityPreview: {PreviewProvisioning, PreviewReady, PreviewResetting, PreviewDeleting, PreviewFailed},
	EntityBackup:  {BackupRunning, BackupCompleted, BackupFailed, BackupExpired},
	EntityExport:  {BackupRunning, BackupCompleted, BackupFailed, BackupExpired},
}

// Edge is one named state change: rows in one of From move to To.
type Edge struct {
	Entity string
	Name   string
	From   []string
	To     string
}

var (
	projectAll = EntityStates[EntityProject]
	previewAll = EntityStates[EntityPreview]
)

// Edges is every allowed state change; the named Mark*/Begin*/Finish*
// functions of this package are the only writers of a state column, and each
// refuses a row whose state is not in its edge's From.
var Edges = []Edge{
	{EntityProject, "project.ready", []string{ProjectProvisioning}, ProjectReady},
	{EntityProject, "project.failed", []string{ProjectProvisioning}, ProjectFailed},
	// retry-provisioning: a project whose provisioning failed tries again.
	{EntityProject, "project.retry_provision", []string{ProjectFailed}, ProjectProvisioning},
	// A delete may start from any state, and again after a delete failed for good.
	{EntityProject, "project.begin_delete", projectAll, ProjectDeleting},
	{EntityProject, "project.deleted", []string{ProjectDeleting}, ProjectDeleting},
	{EntityProject, "project.begin_restore", []string{ProjectReady}, ProjectRestoring},
	{EntityProject, "project.finish_restore", []string{ProjectRestoring}, ProjectReady},
	{EntityProject, "project.begin_import", []string{ProjectReady}, ProjectImporting},
	{EntityProject, "project.finish_import", []string{ProjectImporting}, ProjectReady},

	{EntityPreview, "preview.begin_reset", []string{PreviewReady, PreviewFailed}, PreviewResetting},
	{EntityPreview, "preview.ready", []string{PreviewProvisioning, PreviewResetting}, PreviewReady},
	{EntityPreview, "preview.failed", []string{PreviewProvisioning, PreviewResetting}, PreviewFailed},
	{EntityPreview, "preview.begin_delete", previewAll, PreviewDeleting},
	{EntityPreview, "preview.deleted", previewAll, PreviewDeleting},
	// A finished restore marks the preview ready whatever happened meanwhile
	// (a delete queued behind the restore still runs after it).
	{EntityPreview, "preview.restored", previewAll, PreviewReady},
	{EntityPreview, "preview.restore_failed", []string{PreviewResetting}, PreviewReady},

	{EntityBackup, "backup.completed", []string{BackupRunning}, BackupCompleted},
	{EntityBackup, "backup.failed", []string{BackupRunning}, BackupFailed},
	{EntityBackup, "backup.expired", []string{BackupRunning, BackupCompleted, BackupFailed}, BackupExpired},

	{EntityExport, "export.completed", []string{BackupRunning}, BackupCompleted},
	{EntityExport, "export.failed", []string{BackupRunning}, BackupFailed},
	{EntityExport, "export.expired", []string{BackupRunning, BackupCompleted, BackupFailed}, BackupExpired},
}

// entityTables: where each entity lives, and the condition that keeps
// transitions off soft-deleted rows.
var entityTables = map[string]struct{ table, live string }{
	EntityProject: {"projects", " AND deleted_at IS NULL"},
	EntityPreview: {"preview_databases", " AND deleted_at IS NULL"},
	EntityBackup:  {"backups", ""},
	EntityExport:  {"project_exports", ""},
}

// ErrTransition matches every *TransitionError.
var ErrTransition = errors.New("state transition not allowed")

// TransitionError says a row was not in a state its transition allows.
type TransitionError struct {
	Edge    string
	ID      string
	State   string
	Deleted bool
}

func (e *TransitionError) Error() string {
	if e.Deleted {
		return fmt.Sprintf("%s: %s is deleted", e.Edge, e.ID)
	}
	return fmt.Sprintf("%s: %s is %s", e.Edge, e.ID, e.State)
}

// Is makes errors.Is(err, ErrTransition) true.
func (e *TransitionError) Is(target error) bool { return target == ErrTransition }

// EdgeByName returns the named edge; an unknown name is a programming error.
func EdgeByName(name string) Edge {
	for _, e := range Edges {
		if e.Name == name {
			return e
		}
	}
	panic("store: unknown transition " + name)
}

// change is what a transition writes besides state and updated_at.
type change struct {
	set       string // extra "col = $4, …" assignments; arguments start at $4
	args      []any
	returning string // extra RETURNING columns, scanned into dest
	dest      []any
	from      []string // narrower than the edge's From (a handler finishing its own state)
}

// move applies edge name to row id when its state allows it, else returns a
// *TransitionError (or ErrNotFound when there is no such row).
func move(ctx context.Context, db DB, name, id string, c change) error {
	e := EdgeByName(name)
	t := entityTables[e.Entity]
	from := e.From
	if c.from != nil {
		for _, f := range c.from {
			if !slices.Contains(e.From, f) {
				panic("store: " + name + " does not start from " + f)
			}
		}
		from = c.from
	}
	q := `UPDATE ` + t.table + ` SET state = $2, updated_at = now()`
	if c.set != "" {
		q += `, ` + c.set
	}
	q += ` WHERE id = $1 AND state = ANY($3)` + t.live + ` RETURNING id`
	if c.returning != "" {
		q += `, ` + c.returning
	}
	var got string
	err := db.QueryRow(ctx, q, append([]any{id, e.To, from}, c.args...)...).Scan(append([]any{&got}, c.dest...)...)
	if err = notFound(err); !errors.Is(err, ErrNotFound) {
		return err
	}
	te := &TransitionError{Edge: name, ID: id}
	live := "true"
	if t.live != "" {
		live = strings.TrimPrefix(t.live, " AND ")
	}
	var isLive bool
	if err := db.QueryRow(ctx, `SELECT state, `+live+` FROM `+t.table+` WHERE id = $1`, id).Scan(&te.State, &isLive); err != nil {
		return notFound(err)
	}
	te.Deleted = !isLive
	return te
}
