package lifecycle

import (
	"testing"
	"time"

	"github.com/capydb/capydb/internal/store"
)

func TestScheduleDue(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	ptr := func(s string) *time.Time { tm := at(s); return &tm }
	sc := func(last *time.Time) *store.BackupSchedule {
		return &store.BackupSchedule{CronHour: 10, CronMinute: 30, IsActive: true, LastRunAt: last}
	}
	for _, c := range []struct {
		sc   *store.BackupSchedule
		now  string
		want bool
	}{
		{sc(nil), "2030-03-01T10:29:59Z", false},
		{sc(nil), "2030-03-01T10:30:00Z", true},
		{sc(nil), "2030-03-01T23:59:00Z", true}, // down at 10:30: catch up the same day
		{sc(ptr("2030-03-01T10:30:05Z")), "2030-03-01T18:00:00Z", false},
		{sc(ptr("2030-03-01T10:30:05Z")), "2030-03-02T10:29:00Z", false},
		{sc(ptr("2030-03-01T10:30:05Z")), "2030-03-02T10:30:00Z", true},
		{sc(ptr("2030-02-20T10:30:00Z")), "2030-03-01T11:00:00+02:00", false}, // 09:00 UTC
	} {
		if got := scheduleDue(c.sc, at(c.now)); got != c.want {
			t.Errorf("last %v, now %s: due %v, want %v", c.sc.LastRunAt, c.now, got, c.want)
		}
	}
}
