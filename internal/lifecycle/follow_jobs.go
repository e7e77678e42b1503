package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// FollowCatchUpTimeout bounds how long a cutover waits for the stream to
// reach the source's position; after it the job retries (the follow goes on).
var FollowCatchUpTimeout = 10 * time.Minute

// followJob is what every follow handler starts from: the project, its
// cluster, its follow row and the decrypted source URL (registered as a
// secret with the reporter). f is nil when no follow is in progress.
type followJob struct {
	p         *store.Project
	c         *dataplane.Cluster
	f         *store.ProjectFollow
	sourceURL string
}

func (s *Service) loadFollow(ctx context.Context, j *queue.Job, rep *queue.Reporter) (*followJob, error) {
	p, c, err := s.liveProjectCluster(ctx, j)
	if err != nil {
		return nil, err
	}
	fj := &followJob{p: p, c: c}
	f, err := store.GetProjectFollow(ctx, s.Store.Pool, p.ID)
	if errors.Is(err, store.ErrNotFound) {
		return fj, nil
	}
	if err != nil {
		return nil, err
	}
	raw, err := s.Box.Open(f.SourceURLEnc)
	if err != nil {
		return nil, queue.PermanentError(fmt.Errorf("while decrypting the source URL: %w", err))
	}
	fj.f, fj.sourceURL = f, string(raw)
	if rep != nil {
		rep.Secret(fj.sourceURL)
		if u, err := url.Parse(fj.sourceURL); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok {
				rep.Secret(pw)
			}
		}
	}
	return fj, nil
}

func (fj *followJob) params(connInfo string) dataplane.FollowParams {
	return dataplane.FollowParams{DB: fj.p.DatabaseName, Owner: fj.p.OwnerRole, Name: fj.f.Name, ConnInfo: connInfo}
}

// followStartHandler runs project.import_follow_start: schema copy (built
// aside and swapped in, as an import), publication, subscription.
type followStartHandler struct{ s *Service }

func (h *followStartHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	fj, err := h.s.loadFollow(ctx, j, rep)
	if err != nil {
		return nil, err
	}
	if fj.f == nil || fj.f.StartJobID != j.ID || fj.p.State != store.ProjectImporting {
		return nil, queue.PermanentError(errors.New("the follow import was cut over or aborted"))
	}
	res, err := h.start(ctx, fj, rep)
	if err != nil {
		// Leave nothing streaming behind; a retry starts over.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = fj.c.DropSubscription(cctx, fj.params(""), false)
		_, _ = dataplane.DropSourceObjects(cctx, h.s.sourceConfig(fj.sourceURL), fj.f.Name)
	}
	return res, err
}

func (h *followStartHandler) start(ctx context.Context, fj *followJob, rep *queue.Reporter) (any, error) {
	org, err := store.GetOrganization(ctx, h.s.Store.Pool, fj.p.OrganizationID)
	if err != nil {
		return nil, err
	}
	pf, err := h.s.Preflight(ctx, org, fj.p, fj.sourceURL)
	if err != nil {
		return nil, queue.PermanentError(err)
	}
	if !pf.OK || !pf.Source.Replication.Ready {
		return nil, queue.PermanentError(fmt.Errorf("the source is no longer ready for a follow import: %v %v", pf.Checks, pf.Source.Replication.Blockers))
	}
	pinned, err := h.s.pinHost(ctx, fj.sourceURL)
	if err != nil {
		return nil, queue.PermanentError(err)
	}
	_ = rep.Progress(ctx, map[string]any{"phase": "copying schema"})
	f, err := os.CreateTemp(h.s.cfg.TempDir, "capydb-follow-*.dump")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	err = fj.c.DumpURLSchema(ctx, pinned, f, rep.Command)
	f.Close()
	if err != nil {
		return nil, err
	}
	p := fj.p
	// The stream's initial copy fills every table, so the project starts
	// from an empty database (as recreate: true): rows already there would
	// collide with the copied ones.
	if err := fj.c.Restore(ctx, dataplane.RestoreParams{File: f.Name(), Target: nextDB(p.DatabaseName), Owner: p.OwnerRole,
		Template: dataplane.TemplateDatabase, Jobs: h.s.cloneWorkers(), Command: rep.Command}); err != nil {
		return nil, queue.PermanentError(err)
	}
	if err := fj.c.SwapDatabase(ctx, p.DatabaseName, nextDB(p.DatabaseName), oldDB(p.DatabaseName), p.OwnerRole); err != nil {
		return nil, err
	}
	_ = rep.Progress(ctx, map[string]any{"phase": "subscribing"})
	tables, err := dataplane.CreatePublication(ctx, h.s.sourceConfig(fj.sourceURL), fj.f.Name)
	if err != nil {
		return nil, err
	}
	if err := fj.c.CreateSubscription(ctx, fj.params(pinned)); err != nil {
		return nil, err
	}
	if tables == nil {
		tables = []string{}
	}
	return &wire.FollowStartJobResult{Tables: tables, Publication: fj.f.Name, Slot: fj.f.Name}, nil
}

func (h *followStartHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	return store.MarkProjectFollowStreaming(ctx, tx, *j.ProjectID)
}

func (h *followStartHandler) OnFail(ctx context.Context, tx pgx.Tx, j *queue.Job, msg string) error {
	f, err := store.GetProjectFollow(ctx, tx, *j.ProjectID)
	if err != nil || f.StartJobID != j.ID {
		return nil // cut over, aborted or restarted meanwhile
	}
	if err := store.DeleteProjectFollow(ctx, tx, *j.ProjectID); err != nil {
		return err
	}
	return skipStale(store.FinishProjectImport(ctx, tx, *j.ProjectID, &msg))
}

type followStatusHandler struct{ s *Service }

func (h *followStatusHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	fj, err := h.s.loadFollow(ctx, j, rep)
	if err != nil {
		return nil, err
	}
	out := &wire.ImportFollowStatus{}
	if fj.f == nil {
		return out, nil
	}
	sub, err := fj.c.Subscription(ctx, fj.p.DatabaseName, fj.f.Name)
	if err != nil {
		return nil, err
	}
	if !sub.Exists {
		return out, nil // still starting
	}
	if sub.Active {
		out.UnitActive = "active"
	}
	for _, t := range sub.Tables {
		out.Tables = append(out.Tables, wire.FollowTableStatus{Table: t.Table, State: t.State})
	}
	out.Sentinel = &wire.FollowSentinel{ReceivedLSN: sub.ReceivedLSN}
	pos, err := dataplane.ReadSourcePosition(ctx, h.s.sourceConfig(fj.sourceURL), fj.f.Name)
	if err != nil {
		out.Result = "failed" // the source cannot be read; lag unknown
		return out, nil
	}
	out.Sentinel.SourceLSN, out.Sentinel.ConfirmedLSN = pos.CurrentLSN, pos.ConfirmedLSN
	out.LagBytes = pos.LagBytes
	if !sub.Active && sub.Enabled {
		out.Result = "failed"
	}
	return out, nil
}

// followCutoverHandler runs project.import_follow_cutover.
type followCutoverHandler struct{ s *Service }

func (h *followCutoverHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	fj, err := h.s.loadFollow(ctx, j, rep)
	if err != nil {
		return nil, err
	}
	if fj.f == nil {
		return nil, queue.PermanentError(errors.New("no follow import is in progress"))
	}
	sc := h.s.sourceConfig(fj.sourceURL)
	pos, err := dataplane.ReadSourcePosition(ctx, sc, fj.f.Name)
	if err != nil {
		return nil, err
	}
	// Writers on the source are stopped: everything up to its current
	// position must have reached the project.
	_ = rep.Progress(ctx, map[string]any{"phase": "catching up"})
	began := time.Now()
	deadline := began.Add(FollowCatchUpTimeout)
	var sub *dataplane.SubscriptionStatus
	for {
		if sub, err = fj.c.Subscription(ctx, fj.p.DatabaseName, fj.f.Name); err != nil {
			return nil, err
		}
		if !sub.Exists {
			return nil, queue.PermanentError(errors.New("the subscription is gone"))
		}
		if sub.AllReady() && dataplane.LSNAtLeast(sub.ReceivedLSN, pos.CurrentLSN) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the stream has not caught up with the source after %s (received %s, source %s)",
				FollowCatchUpTimeout, sub.ReceivedLSN, pos.CurrentLSN)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	res := &wire.FollowCutoverJobResult{CaughtUpLSN: sub.ReceivedLSN, CatchUpMS: time.Since(began).Milliseconds(), Tables: len(sub.Tables)}
	_ = rep.Progress(ctx, map[string]any{"phase": "sequences"})
	seqs, err := dataplane.SourceSequences(ctx, sc)
	if err != nil {
		return nil, err
	}
	if res.SequencesMissing, err = fj.c.SetSequences(ctx, fj.p.DatabaseName, fj.p.OwnerRole, seqs); err != nil {
		return nil, err
	}
	res.SequencesSynced = len(seqs) - len(res.SequencesMissing)
	_ = rep.Progress(ctx, map[string]any{"phase": "ending the subscription"})
	if err := fj.c.DropSubscription(ctx, fj.params(""), false); err != nil {
		return nil, err
	}
	if _, err := dataplane.DropSourceObjects(ctx, sc, fj.f.Name); err != nil {
		return nil, err
	}
	return res, nil
}

func (h *followCutoverHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	if err := finishFollow(ctx, tx, *j.ProjectID); err != nil {
		return err
	}
	return event(ctx, tx, j.OrganizationID, "import.completed", map[string]any{
		"organization_id": j.OrganizationID, "project_id": *j.ProjectID, "job_id": j.ID,
	})
}

func finishFollow(ctx context.Context, tx pgx.Tx, projectID string) error {
	if err := store.DeleteProjectFollow(ctx, tx, projectID); err != nil {
		return err
	}
	return skipStale(store.FinishProjectImport(ctx, tx, projectID, nil))
}

// followAbortHandler runs project.import_follow_abort: the stream stops, the
// slot and publication go; the rows copied so far stay.
type followAbortHandler struct{ s *Service }

func (h *followAbortHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	fj, err := h.s.loadFollow(ctx, j, rep)
	if err != nil {
		return nil, err
	}
	if fj.f == nil {
		return &wire.FollowAbortJobResult{}, nil
	}
	sc := h.s.sourceConfig(fj.sourceURL)
	// A source that cannot be reached keeps its slot; the result says so.
	_, reachErr := dataplane.ReadSourcePosition(ctx, sc, fj.f.Name)
	if err := fj.c.DropSubscription(ctx, fj.params(""), reachErr != nil); err != nil {
		return nil, err
	}
	slotLeft, err := dataplane.DropSourceObjects(ctx, sc, fj.f.Name)
	out := &wire.FollowAbortJobResult{SlotLeft: slotLeft}
	if err != nil {
		out.SourceError = scrubURLError(err, fj.sourceURL)
	}
	return out, nil
}

func (h *followAbortHandler) OnComplete(ctx context.Context, tx pgx.Tx, j *queue.Job, _ any) error {
	return finishFollow(ctx, tx, *j.ProjectID)
}

// A failed cutover or abort leaves the follow import running: the project
// stays importing, and either can be asked again.
func (h *followCutoverHandler) OnFail(context.Context, pgx.Tx, *queue.Job, string) error { return nil }
func (h *followAbortHandler) OnFail(context.Context, pgx.Tx, *queue.Job, string) error   { return nil }

// endFollowForDelete ends a follow import of a project being deleted (a
// database with a subscription cannot be dropped): the subscription goes,
// and the slot and publication on the source when it can be reached.
func (s *Service) endFollowForDelete(ctx context.Context, j *queue.Job, rep *queue.Reporter) error {
	p, err := s.project(ctx, j)
	if err != nil {
		return err
	}
	c, err := s.Cluster(p.ClusterID)
	if err != nil {
		return err
	}
	fj := &followJob{p: p, c: c}
	f, err := store.GetProjectFollow(ctx, s.Store.Pool, p.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	fj.f = f
	if raw, err := s.Box.Open(f.SourceURLEnc); err == nil {
		fj.sourceURL = string(raw)
		rep.Secret(fj.sourceURL)
	}
	sc := s.sourceConfig(fj.sourceURL)
	_, reachErr := dataplane.ReadSourcePosition(ctx, sc, f.Name)
	if err := c.DropSubscription(ctx, fj.params(""), reachErr != nil); err != nil {
		return err
	}
	if reachErr == nil {
		_, _ = dataplane.DropSourceObjects(ctx, sc, f.Name)
	}
	return store.DeleteProjectFollow(ctx, s.Store.Pool, p.ID)
}
