package webhooks_test

import (
	"context"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/webhooks"
)

// The dispatcher's test signals: a test waits until its LISTEN took effect
// and then for the recorded attempt, with no polling of tables or receivers.
func TestDispatcherTestSignals(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, nil)
	e.endpoint(t, e.org, r.URL, nil, true)
	cfg := fastConfig(t, "signals")
	cfg.PollInterval = time.Hour // only the NOTIFY can wake it after the first look
	d, err := webhooks.NewDispatcher(e.st.Pool, e.box, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.TestSignals.Listening.Arm()
	d.TestSignals.AttemptDone.Arm()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	if _, err := d.TestSignals.Listening.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	e.event(t, e.org, "project.ready", map[string]any{"project_id": "prj_1", "job_id": "job_1"})
	id, err := d.TestSignals.AttemptDone.Wait(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if hits := r.all(); len(hits) != 1 || hits[0].Delivery != id || hits[0].Event != "project.ready" {
		t.Errorf("receiver got %+v, want one project.ready delivery %s", hits, id)
	}
}
