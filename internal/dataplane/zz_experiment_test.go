package dataplane_test

import (
	"context"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/capydb/capydb/internal/dataplane"
)

func TestZZExperiment(t *testing.T) {
	if os.Getenv("CLONE_EXPERIMENT") == "" {
		t.Skip("experiment")
	}
	e := newEnv(t)
	ctx := context.Background()
	src := e.tenant("exp")
	u := e.lc.AdminDSNFor(src.db)
	pgbench := filepath.Join(e.lc.BinDir(), "pgbench")
	if out, err := osexec.Command(pgbench, "-i", "-s", "20", "-q", u).CombinedOutput(); err != nil {
		t.Fatal(string(out))
	}
	for round := 0; round < 3; round++ {
		c, _ := pgx.Connect(ctx, u)
		t0 := time.Now()
		c.PgConn().CopyTo(ctx, io.Discard, `COPY pgbench_accounts TO STDOUT (FORMAT binary)`)
		relayRead := time.Since(t0)
		t0 = time.Now()
		if _, err := c.Exec(ctx, `COPY pgbench_accounts TO '/dev/null' (FORMAT binary)`); err != nil {
			t.Fatal(err)
		}
		serverRead := time.Since(t0)
		c.Close(ctx)
		pv := e.previewRole()
		dataplane.CloneChunkBytes = 1 << 40
		t0 = time.Now()
		hold := e.mustConnectAs(src.role, src.password, src.db)
		phases := map[string]time.Time{}
		_, err := e.dp.BuildDatabase(ctx, dataplane.BuildParams{Source: src.db, Target: pv.db, Owner: pv.role, Workers: 1,
			Progress: func(p dataplane.CloneProgress) {
				if _, ok := phases[p.Phase]; !ok {
					phases[p.Phase] = time.Now()
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		hold.Close(ctx)
		data := phases[dataplane.PhaseIndexes].Sub(phases[dataplane.PhaseCopying])
		// server-side load from a file, no relay: COPY FROM a file written by the server
		a, _ := pgx.Connect(ctx, e.lc.AdminDSNFor(pv.db))
		a.Exec(ctx, `COPY pgbench_accounts TO '/tmp/zz_accounts.bin' (FORMAT binary)`)
		a.Exec(ctx, `TRUNCATE pgbench_accounts`)
		ca, _ := pgx.Connect(ctx, u)
		ca.Exec(ctx, `COPY pgbench_accounts TO '/tmp/zz_accounts.bin' (FORMAT binary)`)
		ca.Close(ctx)
		t0 = time.Now()
		if _, err := a.Exec(ctx, `COPY pgbench_accounts FROM '/tmp/zz_accounts.bin' (FORMAT binary)`); err != nil {
			t.Fatal(err)
		}
		serverWrite := time.Since(t0)
		a.Close(ctx)
		t.Logf("relay read %.2fs, server read %.2fs, server write %.2fs, relay total data phase %.2fs", relayRead.Seconds(), serverRead.Seconds(), serverWrite.Seconds(), data.Seconds())
		e.dp.DropDatabaseIfOwned(ctx, pv.db, pv.role)
	}
}
