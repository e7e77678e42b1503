package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/ids"
)

// rows inserts one row of each entity in a chosen state.
type rows struct {
	t       *testing.T
	st      *Store
	org, cl string
	project string // parent of previews, backups and exports
}

// parallelRows marks the test parallel (it has its own database) and
// returns that database with its rows helper.
func parallelRows(t *testing.T) (*Store, *rows) {
	t.Parallel()
	st := testStore(t)
	return st, newRows(t, st)
}

func newRows(t *testing.T, st *Store) *rows {
	ctx := context.Background()
	r := &rows{t: t, st: st}
	org := &Organization{ID: ids.New("org_"), Name: "o", Slug: "o", BillingPlan: "business"}
	if err := InsertOrganization(ctx, st.Pool, org); err != nil {
		t.Fatal(err)
	}
	cl := &Cluster{ID: ids.New("cl_"), Name: "local", Provider: "embedded", Region: "local", PublicHost: "127.0.0.1",
		DirectPort: 5432, PooledPort: 6432, PostgresVersion: "15", State: "active"}
	if err := UpsertClusterByName(ctx, st.Pool, cl); err != nil {
		t.Fatal(err)
	}
	r.org, r.cl = org.ID, cl.ID
	r.project = r.insert(EntityProject, ProjectReady)
	return r
}

func (r *rows) insert(entity, state string) string {
	ctx := context.Background()
	id := ids.New("x_")
	sfx := strings.ToLower(ids.RandomBase62(8))
	var err error
	switch entity {
	case EntityProject:
		err = InsertProject(ctx, r.st.Pool, &Project{ID: id, OrganizationID: r.org, ClusterID: r.cl, Name: "p", Slug: "p-" + sfx,
			Environment: "non_production", State: state, PostgresVersion: "15", DatabaseName: "db_" + sfx,
			OwnerRole: "u_" + sfx, RoleName: "u_" + sfx, PasswordEnc: []byte("x")})
	case EntityPreview:
		err = InsertPreview(ctx, r.st.Pool, &Preview{ID: id, OrganizationID: r.org, ProjectID: r.project, ClusterID: r.cl,
			Name: "pv-" + sfx, Mode: PreviewModeEmpty, State: state, TTLExpiresAt: time.Now().Add(time.Hour),
			DatabaseName: "pv_" + sfx, RoleName: "pvu_" + sfx, PasswordEnc: []byte("x")})
	case EntityBackup:
		err = InsertBackup(ctx, r.st.Pool, &Backup{ID: id, OrganizationID: r.org, ProjectID: r.project, BackupKey: "k/" + sfx,
			DatabaseName: "db", Kind: BackupKindManual, State: state, VerificationState: VerifyPending})
	case EntityExport:
		err = InsertExport(ctx, r.st.Pool, &Export{ID: id, OrganizationID: r.org, ProjectID: r.project, ObjectKey: "e/" + sfx,
			DatabaseName: "db", State: state, ExpiresAt: time.Now().Add(time.Hour)})
	default:
		r.t.Fatalf("unknown entity %s", entity)
	}
	if err != nil {
		r.t.Fatalf("inserting %s in state %s: %v", entity, state, err)
	}
	return id
}

func (r *rows) state(entity, id string) string {
	var s string
	if err := r.st.Pool.QueryRow(context.Background(), `SELECT state FROM `+entityTables[entity].table+` WHERE id = $1`, id).
		Scan(&s); err != nil {
		r.t.Fatal(err)
	}
	return s
}

// TestTransitionTable walks every edge from every state of its entity: the
// edge applies exactly from its From states, and anything else is a
// *TransitionError naming the state the row was in, with the row unchanged.
func TestTransitionTable(t *testing.T) {
	ctx := context.Background()
	st, r := parallelRows(t)
	names := map[string]bool{}
	for _, e := range Edges {
		if names[e.Name] {
			t.Errorf("edge %s is listed twice", e.Name)
		}
		names[e.Name] = true
		all := EntityStates[e.Entity]
		if !slices.Contains(all, e.To) {
			t.Errorf("%s: target %q is not a %s state", e.Name, e.To, e.Entity)
		}
		for _, from := range all {
			id := r.insert(e.Entity, from)
			err := move(ctx, st.Pool, e.Name, id, change{})
			if slices.Contains(e.From, from) {
				if err != nil {
					t.Errorf("%s from %s: %v", e.Name, from, err)
				} else if got := r.state(e.Entity, id); got != e.To {
					t.Errorf("%s from %s: state %s, want %s", e.Name, from, got, e.To)
				}
				continue
			}
			var te *TransitionError
			if !errors.As(err, &te) || !errors.Is(err, ErrTransition) || te.State != from || te.Edge != e.Name {
				t.Errorf("%s from %s: got %v, want a TransitionError", e.Name, from, err)
			}
			if got := r.state(e.Entity, id); got != from {
				t.Errorf("%s from %s: refused but state is now %s", e.Name, from, got)
			}
		}
		if err := move(ctx, st.Pool, e.Name, "x_missing", change{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s on a missing row: %v, want ErrNotFound", e.Name, err)
		}
	}
}

// TestTransitionsSkipDeletedRows: soft-deleted projects and previews never
// move, and the error says they are deleted.
func TestTransitionsSkipDeletedRows(t *testing.T) {
	ctx := context.Background()
	st, r := parallelRows(t)
	pv := r.insert(EntityPreview, PreviewProvisioning)
	if _, _, err := MarkPreviewDeleted(ctx, st.Pool, pv); err != nil {
		t.Fatal(err)
	}
	var te *TransitionError
	if err := MarkPreviewReady(ctx, st.Pool, pv, PreviewProvisioning, PreviewBuild{}); !errors.As(err, &te) || !te.Deleted {
		t.Fatalf("ready on a deleted preview: %v", err)
	}
}

// TestNamedTransitions spot-checks that the named functions use their
// edges and write their extra columns.
func TestNamedTransitions(t *testing.T) {
	ctx := context.Background()
	st, r := parallelRows(t)
	p := r.insert(EntityProject, ProjectProvisioning)
	if err := MarkProjectReady(ctx, st.Pool, p); err != nil {
		t.Fatal(err)
	}
	if err := MarkProjectReady(ctx, st.Pool, p); !errors.Is(err, ErrTransition) {
		t.Fatalf("ready twice: %v", err)
	}
	got, err := GetProjectAny(ctx, st.Pool, p)
	if err != nil || !got.Provisioned || got.State != ProjectReady {
		t.Fatalf("after MarkProjectReady: %+v, %v", got, err)
	}
	if err := BeginProjectDelete(ctx, st.Pool, p, "job_x"); err != nil {
		t.Fatal(err)
	}
	if err := MarkProjectDeleted(ctx, st.Pool, p); err != nil {
		t.Fatal(err)
	}
	got, err = GetProjectAny(ctx, st.Pool, p)
	if err != nil || got.DeletedAt == nil || deref(got.LatestJobID) != "job_x" || len(got.PasswordEnc) != 0 {
		t.Fatalf("after delete: %+v, %v", got, err)
	}
	var te *TransitionError
	if err := MarkProjectDeleted(ctx, st.Pool, p); !errors.As(err, &te) || !te.Deleted {
		t.Fatalf("deleted twice: %v", err)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
