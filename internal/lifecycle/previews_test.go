package lifecycle

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/secretbox"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/store/storetest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// controlDB gives the test a Service on its own migrated control database
// (see storetest.ControlDB).
func controlDB(t *testing.T) *Service {
	t.Helper()
	st := storetest.ControlDB(t, 10)
	box, err := secretbox.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, Box: box})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedProject inserts an organization, the local cluster and a ready
// project on it.
func seedProject(t *testing.T, s *Service) (*store.Organization, *store.Project) {
	t.Helper()
	ctx := context.Background()
	org := &store.Organization{ID: ids.New("org_"), Name: "o", Slug: "o", BillingPlan: "business"}
	if err := store.InsertOrganization(ctx, s.Store.Pool, org); err != nil {
		t.Fatal(err)
	}
	cl := &store.Cluster{ID: ids.New("cl_"), Name: "local", Provider: "embedded", Region: "local", PublicHost: "127.0.0.1",
		DirectPort: 5432, PooledPort: 6432, PostgresVersion: "15", State: "active"}
	if err := store.UpsertClusterByName(ctx, s.Store.Pool, cl); err != nil {
		t.Fatal(err)
	}
	p := &store.Project{ID: ids.New("prj_"), OrganizationID: org.ID, ClusterID: cl.ID, Name: "p", Slug: "p", Environment: "non_production",
		State: store.ProjectReady, PostgresVersion: "15", DatabaseName: "db_p", OwnerRole: "u_p", RoleName: "u_p", PasswordEnc: []byte("x")}
	if err := store.InsertProject(ctx, s.Store.Pool, p); err != nil {
		t.Fatal(err)
	}
	return org, p
}

// TestPreviewReaper: with an injected clock the reaper queues exactly one
// deletion per expired preview, even with several reapers racing, and none
// while another server holds the leader lock or before the TTL runs out.
func TestPreviewReaper(t *testing.T) {
	t.Parallel() // its own control database; advisory locks are per database
	ctx := context.Background()
	s := controlDB(t)
	org, p := seedProject(t, s)
	var short []string
	for i := 0; i < 5; i++ {
		pv, _, err := s.CreatePreview(ctx, org, p.ID, CreatePreviewParams{Mode: "empty", TTLHours: 1}, Actor{Kind: "api_key", ID: "key_x"})
		if err != nil {
			t.Fatal(err)
		}
		short = append(short, pv.ID)
	}
	long, _, err := s.CreatePreview(ctx, org, p.ID, CreatePreviewParams{Name: "long", Mode: "empty", TTLHours: 168}, Actor{Kind: "system"})
	if err != nil {
		t.Fatal(err)
	}
	// A protected preview (a Supabase branch) never expires, even past its TTL.
	kept, _, err := s.CreatePreview(ctx, org, p.ID, CreatePreviewParams{Name: "kept", Mode: "empty", TTLHours: 1, Protected: true}, Actor{Kind: "system"})
	if err != nil {
		t.Fatal(err)
	}

	// Not due yet at the real time.
	if n, err := s.ReapExpiredPreviews(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("reaped %d (%v) before any TTL ran out", n, err)
	}
	later := time.Now().Add(2 * time.Hour)

	// Another server is the leader of this round: nothing happens here.
	tx, err := s.Store.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('capydb.preview_reaper'))`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ReapExpiredPreviews(ctx, later); err != nil || n != 0 {
		t.Fatalf("reaped %d (%v) while another server led", n, err)
	}
	_ = tx.Rollback(ctx)

	// Several reapers at once: each expired preview is queued exactly once.
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.ReapExpiredPreviews(ctx, later)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if n, err := s.ReapExpiredPreviews(ctx, later); err != nil || n != 0 {
		t.Fatalf("a second round reaped %d more (%v)", n, err)
	}
	if total != len(short) {
		t.Fatalf("reaped %d previews, want %d", total, len(short))
	}
	for _, id := range short {
		var state, reason string
		var jobs int
		if err := s.Store.Pool.QueryRow(ctx, `SELECT state, delete_reason,
			(SELECT count(*) FROM jobs WHERE preview_database_id = $1 AND type = 'branch.delete' AND payload->>'reason' = 'ttl')
			FROM preview_databases WHERE id = $1`, id).Scan(&state, &reason, &jobs); err != nil {
			t.Fatal(err)
		}
		if state != store.PreviewDeleting || reason != DeleteReasonTTL || jobs != 1 {
			t.Errorf("preview %s: state %s, reason %s, %d delete jobs", id, state, reason, jobs)
		}
	}
	var audits int
	if err := s.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = 'preview.deleted' AND actor_kind = 'system'
		AND metadata->>'reason' = 'ttl'`).Scan(&audits); err != nil || audits != len(short) {
		t.Errorf("%d TTL audit events (%v), want %d", audits, err, len(short))
	}
	if got, err := store.GetPreview(ctx, s.Store.Pool, org.ID, long.ID); err != nil || got.State != store.PreviewProvisioning {
		t.Errorf("the 168h preview was touched: %+v %v", got, err)
	}
	if got, err := store.GetPreview(ctx, s.Store.Pool, org.ID, kept.ID); err != nil || got.State != store.PreviewProvisioning || !got.Protected {
		t.Errorf("the protected preview was reaped: %+v %v", got, err)
	}
	// Deleting previews no longer count against the plan; a new name may reuse a deleted one's.
	if n, err := store.CountLivePreviews(ctx, s.Store.Pool, p.ID); err != nil || n != 2 {
		t.Errorf("live previews %d (%v), want 2 (long, kept)", n, err)
	}
}
