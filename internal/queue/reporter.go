package queue

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capydb/capydb/internal/runner"
	"github.com/capydb/capydb/internal/scrub"
)

// Reporter lets a running handler record command output, progress and the
// secrets to scrub from anything stored.
type Reporter struct {
	pool     *pgxpool.Pool
	job      *Job
	scrub    *scrub.Scrubber
	exitCode *int
	stdout   *string
	stderr   *string
}

// Secret registers values that must never appear in stored output or errors.
func (r *Reporter) Secret(secrets ...string) { r.scrub.Add(secrets...) }

// Command records the outcome of an external command (last_exit_code,
// last_stdout, last_stderr); the runner has already bounded and scrubbed it.
func (r *Reporter) Command(res runner.Result) {
	code := res.ExitCode
	out, errOut := r.scrub.String(res.Stdout), r.scrub.String(res.Stderr)
	r.exitCode, r.stdout, r.stderr = &code, &out, &errOut
}

// Progress stores the job's progress object (phase, percent, bytes_done, bytes_total).
func (r *Reporter) Progress(ctx context.Context, p map[string]any) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = r.pool.Exec(ctx, `UPDATE jobs SET progress = $2, updated_at = now() WHERE id = $1 AND state = 'running'`, r.job.ID, b)
	return err
}
