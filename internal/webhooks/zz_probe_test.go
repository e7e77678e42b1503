package webhooks_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/store"
)

func TestZZProbeBacklog(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, nil)
	for range 10 {
		e.endpoint(t, e.org, r.URL, nil, true)
	}
	ctx := ctxT(t)
	for i := range 10 {
		_, err := e.st.Pool.Exec(ctx, `INSERT INTO events (id, organization_id, type, data) SELECT 'evt_'||g||'_'||$2::text, $1, 'job.completed', '{}' FROM generate_series(1,100) g`, e.org, fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	cfg := fastConfig(t, "d1")
	cfg.Timeout = 10 * time.Second
	startDispatcher(t, e, cfg)
	waitFor(t, 60*time.Second, "all", func() bool { return r.count() >= 10000 })
	t.Logf("10000 deliveries in %s (%.0f/s)", time.Since(start), 10000/time.Since(start).Seconds())
	_ = store.DeliveryPending
}
