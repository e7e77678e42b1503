package pitr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// BaseBackup is one pgBackRest backup of the cluster.
type BaseBackup struct {
	Label     string    `json:"label"`
	Type      string    `json:"type"` // full, diff or incr
	StartedAt time.Time `json:"started_at"`
	StoppedAt time.Time `json:"stopped_at"`
	SizeBytes int64     `json:"size_bytes"` // the cluster's size
	RepoBytes int64     `json:"repo_bytes"` // what it takes in the repository
}

type infoJSON struct {
	Backup []struct {
		Label     string `json:"label"`
		Type      string `json:"type"`
		Error     bool   `json:"error"`
		Timestamp struct {
			Start int64 `json:"start"`
			Stop  int64 `json:"stop"`
		} `json:"timestamp"`
		Info struct {
			Size       int64 `json:"size"`
			Repository struct {
				Delta int64 `json:"delta"`
			} `json:"repository"`
		} `json:"info"`
	} `json:"backup"`
}

// Backups lists the repository's good backups, oldest first.
func (m *Manager) Backups(ctx context.Context) ([]BaseBackup, error) {
	res, err := m.backrest(ctx, "info", "--output=json")
	if err != nil {
		return nil, err
	}
	var stanzas []infoJSON
	if err := json.Unmarshal([]byte(res.Stdout), &stanzas); err != nil {
		return nil, fmt.Errorf("pgbackrest info: %w", err)
	}
	var out []BaseBackup
	for _, s := range stanzas {
		for _, b := range s.Backup {
			if b.Error {
				continue
			}
			out = append(out, BaseBackup{Label: b.Label, Type: b.Type,
				StartedAt: time.Unix(b.Timestamp.Start, 0).UTC(), StoppedAt: time.Unix(b.Timestamp.Stop, 0).UTC(),
				SizeBytes: b.Info.Size, RepoBytes: b.Info.Repository.Delta})
		}
	}
	return out, nil
}

// Backup takes a base backup: full when kind is "full" or when no full
// backup of the last 7 days exists, else a differential one. pgBackRest
// expires what falls out of the window right after it.
func (m *Manager) Backup(ctx context.Context, kind string, fast bool) (*BaseBackup, error) {
	if kind == "" {
		kind = "diff"
		list, err := m.Backups(ctx)
		if err != nil {
			return nil, err
		}
		fresh := false
		for _, b := range list {
			if b.Type == "full" && time.Since(b.StoppedAt) < 7*24*time.Hour {
				fresh = true
			}
		}
		if !fresh {
			kind = "full"
		}
	}
	if kind != "full" && kind != "diff" && kind != "incr" {
		return nil, fmt.Errorf("backup type must be full, diff or incr")
	}
	args := []string{"--type=" + kind}
	if fast {
		args = append(args, "--start-fast")
	}
	if _, err := m.backrest(ctx, "backup", args...); err != nil {
		return nil, err
	}
	list, err := m.Backups(ctx)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errors.New("pgbackrest backup finished but info lists no backup")
	}
	b := list[len(list)-1]
	return &b, nil
}

// Verify checks the repository: every WAL segment and backup file present
// and intact.
func (m *Manager) Verify(ctx context.Context) error {
	_, err := m.backrest(ctx, "verify")
	return err
}

// ArchiverStatus is pg_stat_archiver of the cluster.
type ArchiverStatus struct {
	ArchivedCount   int64      `json:"archived_count"`
	LastArchivedWAL string     `json:"last_archived_wal,omitempty"`
	LastArchivedAt  *time.Time `json:"last_archived_at,omitempty"`
	FailedCount     int64      `json:"failed_count"`
	LastFailedWAL   string     `json:"last_failed_wal,omitempty"`
	LastFailedAt    *time.Time `json:"last_failed_at,omitempty"`
	// Healthy: no failure since the last success.
	Healthy bool `json:"healthy"`
}

// Archiver reads pg_stat_archiver.
func (m *Manager) Archiver(ctx context.Context) (*ArchiverStatus, error) {
	conn, err := pgx.Connect(ctx, m.cfg.AdminDSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var s ArchiverStatus
	var lastWAL, failWAL *string
	err = conn.QueryRow(ctx, `SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time
		FROM pg_stat_archiver`).Scan(&s.ArchivedCount, &lastWAL, &s.LastArchivedAt, &s.FailedCount, &failWAL, &s.LastFailedAt)
	if err != nil {
		return nil, err
	}
	if lastWAL != nil {
		s.LastArchivedWAL = *lastWAL
	}
	if failWAL != nil {
		s.LastFailedWAL = *failWAL
	}
	s.Healthy = s.LastFailedAt == nil || (s.LastArchivedAt != nil && s.LastArchivedAt.After(*s.LastFailedAt))
	return &s, nil
}

// Mark makes "now" restorable: it commits two heartbeats (a time target is
// only reached when recovery sees a commit after it), switches to a new WAL
// segment and waits until that segment is archived. It returns the first
// heartbeat's commit time: the latest restorable point.
func (m *Manager) Mark(ctx context.Context) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, m.cfg.AdminDSN)
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS public.capydb_pitr_heartbeat (id int PRIMARY KEY, at timestamptz NOT NULL)`); err != nil {
		return time.Time{}, err
	}
	var at time.Time
	for i := 0; i < 2; i++ {
		var t time.Time
		if err := conn.QueryRow(ctx, `INSERT INTO public.capydb_pitr_heartbeat VALUES (1, clock_timestamp())
			ON CONFLICT (id) DO UPDATE SET at = excluded.at RETURNING at`).Scan(&t); err != nil {
			return time.Time{}, err
		}
		if i == 0 {
			at = t
		}
	}
	var seg string
	if err := conn.QueryRow(ctx, `SELECT pg_walfile_name(pg_switch_wal())`).Scan(&seg); err != nil {
		return time.Time{}, err
	}
	for {
		var last *string
		if err := conn.QueryRow(ctx, `SELECT last_archived_wal FROM pg_stat_archiver`).Scan(&last); err != nil {
			return time.Time{}, err
		}
		// Same timeline: names compare in WAL order.
		if last != nil && len(*last) >= 24 && (*last)[:24] >= seg {
			return at.UTC(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("WAL segment %s was not archived in time (see pg_stat_archiver): %w", seg, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Window is the restorable range of the cluster.
type Window struct {
	// Earliest is one second after the oldest base backup's stop (pgBackRest
	// compares whole seconds); zero when there is no backup yet.
	Earliest   time.Time   `json:"earliest"`
	LastBackup *BaseBackup `json:"last_backup,omitempty"`
	Backups    int         `json:"backups"`
}

// Window reads the repository.
func (m *Manager) Window(ctx context.Context) (*Window, error) {
	list, err := m.Backups(ctx)
	if err != nil {
		return nil, err
	}
	w := &Window{Backups: len(list)}
	if len(list) == 0 {
		return w, nil
	}
	w.Earliest = list[0].StoppedAt.Add(time.Second)
	last := list[len(list)-1]
	w.LastBackup = &last
	return w, nil
}
