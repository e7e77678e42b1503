package pglogs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/pglogs"
	"github.com/capydb/capydb/internal/store/storetest"
)

// BenchmarkCollector measures the collector's throughput (parse, redact,
// store with its position) on a file of realistic error lines:
//
//	go test -run '^$' -bench Collector -benchtime 1x ./internal/pglogs/
func BenchmarkCollector(b *testing.B) {
	const lines = 100000
	dir := b.TempDir()
	var sb strings.Builder
	for i := range lines {
		fmt.Fprintf(&sb, `{"timestamp":"2026-12-06 05:00:00.%03d UTC","user":"u_shop","dbname":"db_shop_%d","pid":%d,`+
			`"remote_host":"127.0.0.1","session_id":"6752","line_num":%d,"ps":"SELECT","session_start":"2026-12-06 05:00:00 UTC",`+
			`"vxid":"3/%d","txid":0,"error_severity":"ERROR","state_code":"23505","message":"duplicate key value violates unique constraint \"users_email_key\"",`+
			`"detail":"Key (email)=(user%d@example.com) already exists.","statement":"INSERT INTO users (email, name) VALUES ($1, $2)",`+
			`"application_name":"app","backend_type":"client backend","query_id":0}`+"\n", i%1000, i%10, 1000+i%50, i, i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "postgresql-20261206-050000.json"), []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		st := storetest.ControlDB(b, 4)
		c := pglogs.New(pglogs.Config{Store: st, ClusterID: ids.New("cl_"), Dir: dir})
		total := 0
		for total < lines {
			n, err := c.Step(ctx)
			if err != nil || n == 0 {
				b.Fatalf("after %d lines: %d, %v", total, n, err)
			}
			total += n
		}
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}
