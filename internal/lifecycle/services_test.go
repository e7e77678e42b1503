package lifecycle

import (
	"context"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/store"
)

// The preview reaper and backup scheduler are services: they run a round at
// once and then every interval on their clock, fire their Round test signal
// after each round, and return from Run when ctx ends.
func TestSchedulerServices(t *testing.T) {
	t.Parallel() // its own control database; advisory locks are per database
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := controlDB(t)
	org, p := seedProject(t, s)
	pv, _, err := s.CreatePreview(ctx, org, p.ID, CreatePreviewParams{Mode: "empty", TTLHours: 1}, Actor{Kind: "system"})
	if err != nil {
		t.Fatal(err)
	}
	// Due at 00:00 UTC: the scheduler's first round queues it, later rounds
	// of the same (fixed) day do not.
	if _, err := s.UpsertSchedule(ctx, org.ID, p.ID, ScheduleParams{IsActive: true}, Actor{Kind: "system"}); err != nil {
		t.Fatal(err)
	}

	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	reaper := NewPreviewReaper(s, bgsvc.PeriodicConfig{Interval: 20 * time.Millisecond, Clock: later})
	reaper.TestSignals.Round.Arm()
	fixed := time.Now().Add(2 * time.Hour)
	sched := NewBackupScheduler(s, bgsvc.PeriodicConfig{Interval: 20 * time.Millisecond, Clock: func() time.Time { return fixed }})
	sched.TestSignals.Round.Arm()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- reaper.Run(runCtx) }()
	go func() { done <- sched.Run(runCtx) }()

	// The first round sees the preview as expired on the reaper's clock.
	if n, err := reaper.TestSignals.Round.Wait(10 * time.Second); err != nil || n != 1 {
		t.Fatalf("first reaper round queued %d (%v), want 1", n, err)
	}
	if n, err := reaper.TestSignals.Round.Wait(10 * time.Second); err != nil || n != 0 {
		t.Fatalf("second reaper round queued %d (%v), want 0", n, err)
	}
	got, err := store.GetPreview(ctx, s.Store.Pool, org.ID, pv.ID)
	if err != nil || got.State != store.PreviewDeleting {
		t.Errorf("preview after the reaper: %+v %v", got, err)
	}
	for i, want := range []int{1, 0} {
		if n, err := sched.TestSignals.Round.Wait(10 * time.Second); err != nil || n != want {
			t.Fatalf("scheduler round %d queued %d (%v), want %d", i+1, n, err, want)
		}
	}
	if bs, err := store.ListBackups(ctx, s.Store.Pool, p.ID); err != nil || len(bs) != 1 || bs[0].Kind != store.BackupKindScheduled {
		t.Errorf("backups after the scheduler: %+v %v, want one scheduled", bs, err)
	}

	stop()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a service did not return after cancel")
		}
	}
}
