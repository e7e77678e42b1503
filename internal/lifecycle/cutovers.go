package lifecycle

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Cutovers (PRODUCT.md §22): a tenant asks for a ready preview to become
// the project's production data; an operator acknowledges or rejects it
// and executes it (pre-cutover backup, then project.promote_preview).

// JobPromotePreview replaces a project's database with a preview's contents.
const JobPromotePreview = "project.promote_preview"

// CutoverParams is a tenant's request.
type CutoverParams struct {
	PreviewID         string
	CustomerNote      string
	ExternalTicketRef string
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CreateCutoverRequest records an open request for a ready preview of the project.
func (s *Service) CreateCutoverRequest(ctx context.Context, org *store.Organization, projectID string, in CutoverParams, actor Actor) (*store.CutoverRequest, error) {
	if in.PreviewID == "" {
		return nil, invalidf("preview_id is required")
	}
	if utf8.RuneCountInString(in.CustomerNote) > 1000 {
		return nil, invalidf("customer_note must be at most 1000 characters")
	}
	if utf8.RuneCountInString(in.ExternalTicketRef) > 120 {
		return nil, invalidf("external_ticket_ref must be at most 120 characters")
	}
	var out *store.CutoverRequest
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		p, err := store.LockProject(ctx, tx, org.ID, projectID)
		if err != nil {
			return err
		}
		pv, err := store.GetPreview(ctx, tx, org.ID, in.PreviewID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && pv.ProjectID != p.ID) {
			return domainerr.New(domainerr.NotFound, "preview not found")
		}
		if err != nil {
			return err
		}
		if pv.State != store.PreviewReady {
			return conflictf("preview is not ready (state %s)", pv.State)
		}
		live, err := store.LiveCutoverForPreview(ctx, tx, pv.ID)
		if err != nil {
			return err
		}
		if live {
			return conflictf("preview %s already has an open cutover request", pv.ID)
		}
		kind := actor.Kind
		if kind != "user" {
			kind = "api_key"
		}
		out, err = store.InsertCutoverRequest(ctx, tx, &store.CutoverRequest{ID: ids.New("cor_"), OrganizationID: org.ID,
			ProjectID: p.ID, PreviewDatabaseID: pv.ID, CustomerNote: optional(in.CustomerNote),
			ExternalTicketRef: optional(in.ExternalTicketRef), RequestedByActorKind: kind, RequestedByActorID: optional(actor.ID)})
		if err != nil {
			return err
		}
		return audit(ctx, tx, org.ID, p.ID, "cutover.requested", actor, map[string]any{"cutover_request_id": out.ID, "preview_id": pv.ID})
	})
	return out, err
}

// ListCutoverRequests lists a project's requests, newest first.
func (s *Service) ListCutoverRequests(ctx context.Context, org *store.Organization, projectID string) ([]*store.CutoverRequest, error) {
	p, err := store.GetProject(ctx, s.Store.Pool, org.ID, projectID)
	if err != nil {
		return nil, err
	}
	return store.ListCutoverRequests(ctx, s.Store.Pool, p.ID, "")
}

// OperatorReview is an operator's acknowledgement or rejection.
type OperatorReview struct {
	Operator          string // who (ack_by_user_id, audit actor)
	Note              string
	ExternalTicketRef string // set or replace the ticket on ack
	Reason            string // rejection reason (required to reject)
}

func operatorActor(name string) Actor { return Actor{Kind: "operator", ID: name} }

// reviewCutover locks request id and applies change when its status is one of from.
func reviewCutover(ctx context.Context, st *store.Store, id string, from []string, change func(tx pgx.Tx, c *store.CutoverRequest) error) (*store.CutoverRequest, error) {
	var out *store.CutoverRequest
	err := st.InTx(ctx, func(tx pgx.Tx) error {
		c, err := store.LockCutoverRequest(ctx, tx, id)
		if err != nil {
			return domainerr.New(domainerr.NotFound, "cutover request not found")
		}
		ok := false
		for _, f := range from {
			ok = ok || c.Status == f
		}
		if !ok {
			return conflictf("cutover request %s is %s", c.ID, c.Status)
		}
		if err := change(tx, c); err != nil {
			return err
		}
		out = c
		return store.UpdateCutoverRequest(ctx, tx, c)
	})
	return out, err
}

// AckCutover acknowledges an open request (operator tooling); on an
// acknowledged one it updates the ticket and note.
func AckCutover(ctx context.Context, st *store.Store, id string, r OperatorReview) (*store.CutoverRequest, error) {
	return reviewCutover(ctx, st, id, []string{store.CutoverOpen, store.CutoverAcked}, func(tx pgx.Tx, c *store.CutoverRequest) error {
		if c.Status == store.CutoverOpen {
			now := time.Now().UTC()
			c.Status, c.AckAt, c.AckByUserID = store.CutoverAcked, &now, optional(r.Operator)
		}
		if r.Note != "" {
			c.OperatorNote = &r.Note
		}
		if r.ExternalTicketRef != "" {
			if utf8.RuneCountInString(r.ExternalTicketRef) > 120 {
				return invalidf("external_ticket_ref must be at most 120 characters")
			}
			c.ExternalTicketRef = &r.ExternalTicketRef
		}
		return audit(ctx, tx, c.OrganizationID, c.ProjectID, "cutover.acked", operatorActor(r.Operator), map[string]any{"cutover_request_id": c.ID})
	})
}

// RejectCutover rejects an open or acknowledged request with a reason.
func RejectCutover(ctx context.Context, st *store.Store, id string, r OperatorReview) (*store.CutoverRequest, error) {
	if r.Reason == "" {
		return nil, invalidf("a rejection needs a reason")
	}
	return reviewCutover(ctx, st, id, []string{store.CutoverOpen, store.CutoverAcked}, func(tx pgx.Tx, c *store.CutoverRequest) error {
		c.Status, c.RejectedReason = store.CutoverRejected, &r.Reason
		if r.Note != "" {
			c.OperatorNote = &r.Note
		}
		return audit(ctx, tx, c.OrganizationID, c.ProjectID, "cutover.rejected", operatorActor(r.Operator),
			map[string]any{"cutover_request_id": c.ID, "reason": r.Reason})
	})
}

type promotePayload struct {
	CutoverRequestID string `json:"cutover_request_id"`
	BackupID         string `json:"backup_id"`
}

// ExecuteCutover starts an acknowledged request: a pre_cutover backup is
// recorded, the project becomes restoring and project.promote_preview is
// queued (it takes and verifies the backup first, then swaps).
func ExecuteCutover(ctx context.Context, st *store.Store, id, operator string) (*store.CutoverRequest, *queue.Job, error) {
	var job *queue.Job
	c, err := reviewCutover(ctx, st, id, []string{store.CutoverAcked}, func(tx pgx.Tx, c *store.CutoverRequest) error {
		if c.ExternalTicketRef == nil || *c.ExternalTicketRef == "" {
			return invalidf("an external_ticket_ref is required before execution (ack it with --ticket)")
		}
		if c.PromoteJobID != nil {
			if j, err := queue.GetAny(ctx, tx, *c.PromoteJobID); err == nil && !j.Terminal() {
				return conflictf("cutover request %s is already being executed by %s", c.ID, j.ID)
			}
		}
		p, err := store.LockProject(ctx, tx, c.OrganizationID, c.ProjectID)
		if err != nil {
			return err
		}
		if p.State != store.ProjectReady {
			return conflictf("project is not ready (state %s)", p.State)
		}
		pv, err := store.GetPreview(ctx, tx, c.OrganizationID, c.PreviewDatabaseID)
		if err != nil || pv.State != store.PreviewReady {
			return conflictf("the preview is no longer ready")
		}
		b := (&Service{}).newBackup(p, "before cutover "+c.ID, store.BackupKindPreCutover, time.Now().Add(ManualBackupRetention))
		jobID := ids.New("job_")
		b.JobID = &jobID
		if err := store.InsertBackup(ctx, tx, b); err != nil {
			return err
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{ID: jobID, Type: JobPromotePreview, OrganizationID: c.OrganizationID,
			ProjectID: p.ID, PreviewID: pv.ID, ClusterID: p.ClusterID, LockedResource: "project:" + p.ID, MaxAttempts: 2,
			Payload: promotePayload{CutoverRequestID: c.ID, BackupID: b.ID}})
		if err != nil {
			return err
		}
		if err := store.BeginProjectRestore(ctx, tx, p.ID, job.ID); err != nil {
			return err
		}
		c.PreCutoverBackupID, c.PromoteJobID = &b.ID, &job.ID
		return audit(ctx, tx, c.OrganizationID, c.ProjectID, "cutover.promote_started", operatorActor(operator),
			map[string]any{"cutover_request_id": c.ID, "job_id": job.ID, "pre_cutover_backup_id": b.ID})
	})
	return c, job, err
}
