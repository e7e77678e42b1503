package patronitest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPairSurvivesSwitchoverAndCrash checks the harness itself: a committed
// row survives a planned switchover and then a crash of the new leader, and
// the multi-host URL always reaches the writable member.
func TestPairSurvivesSwitchoverAndCrash(t *testing.T) {
	ctx := context.Background()
	p := Start(t)
	url := p.SuperuserURL("postgres")
	exec := func(sql string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			conn, err := pgx.Connect(ctx, url)
			if err == nil {
				_, err = conn.Exec(ctx, sql)
				conn.Close(ctx)
			}
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v\n%s", sql, err, p.Logs())
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	count := func() int {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM ha_check").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	exec("CREATE TABLE ha_check (id int)")
	exec("INSERT INTO ha_check VALUES (1)")

	first := p.WaitLeader(10 * time.Second)
	p.Switchover(first)
	deadline := time.Now().Add(60 * time.Second)
	for p.Leader() == nil || p.Leader() == first {
		if time.Now().After(deadline) {
			t.Fatalf("switchover did not happen\n%s", p.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	exec("INSERT INTO ha_check VALUES (2)")
	p.WaitStreaming(90 * time.Second)

	second := p.Leader()
	p.Crash(second)
	if got := p.WaitLeader(90 * time.Second); got != first {
		t.Fatalf("leader after the crash is %s, want %s", got.Name, first.Name)
	}
	exec("INSERT INTO ha_check VALUES (3)")
	if n := count(); n != 3 {
		t.Fatalf("rows after switchover and crash = %d, want 3 (an acknowledged write was lost)", n)
	}
}
