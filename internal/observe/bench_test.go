package observe_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/observe"
	"github.com/capydb/capydb/internal/store"
)

// BenchmarkSamplerRound measures one sampler round (catalog queries, deltas,
// alert evaluation, inserts) over OBS_BENCH_PROJECTS projects (default 100),
// each with its own real database:
//
//	OBS_BENCH_PROJECTS=1000 go test -run '^$' -bench SamplerRound -benchtime 5x ./internal/observe/
func BenchmarkSamplerRound(b *testing.B) {
	n := 100
	if v, err := strconv.Atoi(os.Getenv("OBS_BENCH_PROJECTS")); err == nil && v > 0 {
		n = v
	}
	e := newEnv(b)
	ctx := context.Background()
	var dbs []string
	for i := range n {
		db := fmt.Sprintf("obsbench_%s_%d", e.sfx, i)
		if _, err := e.dp.Admin().Exec(ctx, `CREATE DATABASE `+db+` TEMPLATE template0`); err != nil {
			b.Fatal(err)
		}
		dbs = append(dbs, db)
		p := &store.Project{ID: ids.New("prj_"), OrganizationID: e.org.ID, ClusterID: e.dp.ID, Name: db, Slug: db,
			Environment: "production", State: store.ProjectReady, PostgresVersion: "15", DatabaseName: db,
			OwnerRole: "x", RoleName: "x", PasswordEnc: []byte("x")}
		if err := store.InsertProject(ctx, e.st.Pool, p); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		for _, db := range dbs {
			_, _ = e.dp.Admin().Exec(context.Background(), `DROP DATABASE IF EXISTS `+db)
		}
	})
	if _, err := e.st.Pool.Exec(ctx, `UPDATE projects SET provisioned = true`); err != nil {
		b.Fatal(err)
	}
	s := observe.NewSampler(observe.Config{Store: e.st, Clusters: func() map[string]*dataplane.Cluster {
		return map[string]*dataplane.Cluster{e.dp.ID: e.dp}
	}, Limits: limits(1<<40, 40)}, bgsvcConfig())
	now := time.Now()
	b.ResetTimer()
	for i := range b.N {
		got, err := s.Round(ctx, now.Add(time.Duration(i)*time.Minute))
		if err != nil || got != n+1 { // plus the env's own project
			b.Fatalf("round sampled %d of %d: %v", got, n+1, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/round")
	b.ReportMetric(float64(n), "projects")
}
