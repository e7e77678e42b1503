package localcluster

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"
)

func TestProbeTiming(t *testing.T) {
	ports := freePorts(t, 2)
	lg := slog.New(slog.NewTextHandler(os.Stderr, nil))
	t0 := time.Now()
	c, err := Start(context.Background(), Config{DataDir: tempDataDir(t), Fast: true, Logger: lg, DirectPort: ports[0], DirectPortExplicit: true, PooledPort: ports[1], PooledPortExplicit: true})
	t.Logf("start %s %v", time.Since(t0), err)
	t1 := time.Now()
	c.Stop(context.Background())
	t.Logf("stop %s", time.Since(t1))
}
