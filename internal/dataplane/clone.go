package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/capydb/capydb/internal/runner"
)

// Clone strategies, as recorded on previews and in job results.
const (
	// StrategyTemplate is CREATE DATABASE … TEMPLATE <source>: a file-level
	// copy, possible only while the source has no sessions.
	StrategyTemplate = "template"
	// StrategySnapshotCopy is a parallel copy of one exported snapshot:
	// schema first, data streamed by several workers, indexes and
	// constraints after the data.
	StrategySnapshotCopy = "snapshot_copy"
	// StrategyEmpty is a blank database from the cluster's template.
	StrategyEmpty = "empty"
)

// Clone phases reported through BuildParams.Progress.
const (
	PhaseCreating  = "creating_database"
	PhaseSchema    = "copying_schema"
	PhaseCopying   = "copying_data"
	PhaseIndexes   = "building_indexes"
	PhaseFinishing = "finishing"
)

// CloneOptions tune clones and dumps. Zero fields take the defaults below;
// benchmarks and tests set them through Config, never through globals.
type CloneOptions struct {
	// LockTimeout bounds every lock wait of a clone or dump on the source (a
	// running migration holding a table): the job fails and is retried
	// instead of queueing the project's writers behind it. Default 30 s.
	LockTimeout time.Duration
	// ChunkBytes splits tables larger than this into block ranges copied by
	// different workers, so one big table does not serialize the copy.
	// Default 64 MiB.
	ChunkBytes int64
	// TemplateStrategy is the CREATE DATABASE strategy of a template clone.
	// FILE_COPY copies the files (plus a checkpoint); WAL_LOG writes every
	// page to the WAL. Measured in bench/results/clone.json. Default FILE_COPY.
	TemplateStrategy string
	// TextCopy streams rows in COPY's text format even where every column
	// type has binary I/O (binary is the default).
	TextCopy bool
}

func (o CloneOptions) withDefaults() CloneOptions {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 30 * time.Second
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = 64 << 20
	}
	if o.TemplateStrategy == "" {
		o.TemplateStrategy = "FILE_COPY"
	}
	return o
}

// CloneProgress is a snapshot of a running build.
type CloneProgress struct {
	Phase      string
	BytesDone  int64
	BytesTotal int64
}

// BuildParams describe a database to build for a preview.
type BuildParams struct {
	// Source is the database to clone; empty builds a blank database from
	// the cluster's template.
	Source string
	// Target is the database to create. A leftover owned by Owner (an
	// earlier attempt) is dropped first; one owned by anyone else is a
	// ForeignObjectError.
	Target string
	// Owner is the login role that owns the target and everything in it.
	Owner string
	// Strategy forces template or snapshot_copy ("" = choose).
	Strategy string
	// Workers is the number of parallel copy workers (default 2).
	Workers int
	// Progress, when set, is called as the build advances (from several
	// goroutines, never concurrently).
	Progress func(CloneProgress)
	// AfterSnapshot is called once the snapshot is exported and before any
	// data is read (tests use it to commit writes that must not appear).
	AfterSnapshot func(ctx context.Context) error
	// Command, when set, receives the result of every external command.
	Command func(runner.Result)
	Log     *slog.Logger
}

// BuildResult says how a build went.
type BuildResult struct {
	Strategy string
	Duration time.Duration
	// Bytes is the size of the copied data (the source database's size for a
	// template copy, the streamed COPY data for a snapshot copy).
	Bytes int64
	// Tables is how many tables a snapshot copy streamed.
	Tables int
	// Unowned lists objects whose ownership could not be moved to Owner.
	Unowned []string
	// Steps is where the time went, in order.
	Steps []CloneStep
}

// BuildDatabase creates p.Target owned by p.Owner: empty, or a consistent
// copy of p.Source. The source stays writable throughout: no session on it is
// terminated and none of its writes fails. On error the target is dropped.
func (c *Cluster) BuildDatabase(ctx context.Context, p BuildParams) (res BuildResult, err error) {
	start := time.Now()
	if p.Workers <= 0 {
		p.Workers = 2
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Progress == nil {
		p.Progress = func(CloneProgress) {}
	}
	st := newSteps()
	defer func() { res.Steps = st.list }()
	var owners *pendingAgent
	if err := c.DropDatabaseIfOwned(ctx, p.Target, p.Owner); err != nil {
		return res, err
	}
	st.lap("drop_leftover")
	defer func() {
		if err != nil {
			// Leave nothing half-built behind; the caller may retry.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if derr := c.DropDatabaseIfOwned(cctx, p.Target, p.Owner); derr != nil {
				err = errors.Join(err, fmt.Errorf("while removing the partial database %s: %w", p.Target, derr))
			}
		}
	}()
	p.Progress(CloneProgress{Phase: PhaseCreating})

	switch {
	case p.Source == "":
		res.Strategy = StrategyEmpty
		if _, err := c.admin.Exec(ctx, `CREATE DATABASE `+ident(p.Target)+` OWNER `+ident(p.Owner)+
			` TEMPLATE `+ident(TemplateDatabase)); err != nil {
			return res, fmt.Errorf("while creating database %s: %w", p.Target, err)
		}
	default:
		var srcExists bool
		if srcExists, err = c.DatabaseExists(ctx, p.Source); err != nil {
			return res, err
		}
		if !srcExists {
			return res, &ForeignObjectError{Msg: fmt.Sprintf("source database %s does not exist", p.Source)}
		}
		owners = c.startOwnerAgent(ctx, p.Source, p.Owner)
		defer func() { owners.close(ctx); st.lap("owner_agent_drop") }()
		strategy := p.Strategy
		if strategy == "" || strategy == StrategyTemplate {
			ok, size, terr := c.tryTemplateCopy(ctx, p, strategy == StrategyTemplate, st)
			if terr != nil {
				return res, terr
			}
			if ok {
				// The copy has the source's files, and nothing wrote to
				// the source meanwhile: no need to walk them a second time.
				res.Strategy, res.Bytes = StrategyTemplate, size
				p.Progress(CloneProgress{Phase: PhaseCopying, BytesDone: res.Bytes, BytesTotal: res.Bytes})
				break
			}
			strategy = StrategySnapshotCopy
		}
		if strategy != StrategySnapshotCopy {
			return res, fmt.Errorf("unknown clone strategy %q", strategy)
		}
		res.Strategy = StrategySnapshotCopy
		if err := c.snapshotCopy(ctx, p, &res, st); err != nil {
			return res, err
		}
	}

	p.Progress(CloneProgress{Phase: PhaseFinishing, BytesDone: res.Bytes, BytesTotal: res.Bytes})
	// The REVOKE (a shared catalog, from the postgres database) runs beside
	// the ownership changes inside the target; nobody can log in to the
	// target before the build returns and it is swapped in.
	revoked := make(chan error, 1)
	go func() {
		_, err := c.admin.Exec(ctx, `REVOKE ALL ON DATABASE `+ident(p.Target)+` FROM PUBLIC`)
		if err != nil {
			err = fmt.Errorf("while restricting database %s: %w", p.Target, err)
		}
		revoked <- err
	}()
	if p.Source != "" {
		res.Unowned, err = c.reassignOwnership(ctx, owners, p.Target, p.Owner, st)
	}
	if rerr := <-revoked; err == nil {
		err = rerr
	}
	st.lap("revoke_wait")
	if err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, nil
}
