package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/capydb/capydb/pkg/capydb"
)

// TestGoClient drives the importable Go client (pkg/capydb) against a real
// server: create a project, wait for its job, connect to the URL it hands
// out, and read the server's errors as typed errors.
func TestGoClient(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := capydb.New(s.url+"/", s.key)
	if err != nil {
		t.Fatal(err)
	}
	env := capydb.CreateProjectBodyEnvironmentNonProduction
	created, err := c.CreateProjectWithResponse(ctx, capydb.CreateProjectBody{Name: "Go Client", Environment: &env})
	if err != nil {
		t.Fatal(err)
	}
	if created.StatusCode() != 202 || created.JSON202.Project.Slug != "go-client" || created.JSON202.Job.ID == "" {
		t.Fatalf("create: %d %s", created.StatusCode(), created.Body)
	}
	job, err := c.WaitJob(ctx, created.JSON202.Job.ID)
	if err != nil || job.State != capydb.JobStateCompleted {
		t.Fatalf("provisioning job: %v %+v", err, job)
	}
	id := created.JSON202.Project.ID
	got, err := c.GetProjectWithResponse(ctx, id)
	if err != nil || got.JSON200.Project.State != capydb.ProjectStateReady {
		t.Fatalf("get project: %v %s", err, got.Body)
	}
	conns, err := c.GetProjectConnectionsWithResponse(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*string{conns.JSON200.Connections.DirectURL, conns.JSON200.Connections.PooledURL} {
		if u == nil {
			t.Fatalf("connections without URLs: %s", conns.Body)
		}
		if db := query[string](t, *u, "select current_database()"); db != got.JSON200.Project.DatabaseName {
			t.Fatalf("connected to %q, want %q", db, got.JSON200.Project.DatabaseName)
		}
	}

	// The server's {"error": ...} comes back as *capydb.ResponseError.
	_, err = c.GetProjectWithResponse(ctx, "prj_doesnotexist")
	var re *capydb.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 404 || re.Message == "" || !capydb.IsNotFound(err) {
		t.Fatalf("unknown project: %v", err)
	}
	_, err = c.CreateProjectWithResponse(ctx, capydb.CreateProjectBody{Name: ""})
	if capydb.StatusCode(err) != 400 {
		t.Fatalf("empty name: %v", err)
	}
	bad, _ := capydb.New(s.url, "capy_live_00000000000000000000000000000000")
	if _, err := bad.ListProjectsWithResponse(ctx, nil); capydb.StatusCode(err) != 401 {
		t.Fatalf("unknown key: %v", err)
	}

	del, err := c.DeleteProjectWithResponse(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitJob(ctx, del.JSON202.Job.ID); err != nil {
		t.Fatalf("delete job: %v", err)
	}
	if _, err := c.GetProjectWithResponse(ctx, id); !capydb.IsNotFound(err) {
		t.Fatalf("deleted project: %v", err)
	}
}
