package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/capydb/capydb/internal/bgsvc"
)

// waitOpts are the wait flags of an async command (CLI.md §9).
type waitOpts struct {
	wait    bool
	timeout time.Duration
}

func addWaitFlags(cmd *cobra.Command, w *waitOpts, waitDefault bool, timeoutDefault time.Duration) {
	cmd.Flags().BoolVar(&w.wait, "wait", waitDefault, "wait until the job finishes")
	cmd.Flags().DurationVar(&w.timeout, "wait-timeout", timeoutDefault, "how long --wait waits")
}

// pollSchedule is the wait before poll n+1 (poll 0 is at once): a quarter of
// the time waited so far, at least 50 ms and at most 2 s. A job that takes
// 200 ms is seen done by about 250 ms, one that takes 700 ms by about 760 ms
// (never more than a quarter late, plus 50 ms), and long jobs settle at one
// poll every 2 s, instead of the 2 s, 4 s, 8 s, 10 s of CLI.md §9.
func pollSchedule(n int) time.Duration {
	var at time.Duration
	for i := 0; ; i++ {
		d := min(max(at/4, firstPoll), maxPoll)
		if i == n || d == maxPoll {
			return d
		}
		at += d
	}
}

const (
	firstPoll = 50 * time.Millisecond
	maxPoll   = 2 * time.Second
)

// maxPollErrors is how many failed polls in a row are tolerated.
const maxPollErrors = 5

// waitJob polls GET /v1/jobs/{id} until the job is terminal, the timeout
// passes (exit 6) or the user presses Ctrl-C (which stops waiting, never
// the job). action names the operation in the failure message. It returns
// the last job seen; a job that ended failed is an error (exit 1).
func (a *app) waitJob(c *apiclient.Client, job *apiclient.Job, timeout time.Duration, action string) (*apiclient.Job, error) {
	if job == nil || job.ID == "" {
		return job, nil // nothing to wait for
	}
	start := time.Now()
	deadline := start.Add(timeout)
	last := job
	live := a.stderrTTY
	lastLine := ""
	defer func() {
		if live && lastLine != "" {
			fmt.Fprintln(a.err)
		}
	}()
	failures := 0
	for n := 0; ; n++ {
		j, err := c.GetJob(a.ctx, job.ID)
		throttled := false
		switch {
		case err == nil:
			failures = 0
			last = j
		case a.ctx.Err() != nil:
			return last, a.interrupted(job.ID)
		default:
			switch st := apiclient.StatusOf(err); {
			case st == 401 || st == 403:
				return last, op("wait for job "+job.ID, err)
			case st == 404 || st == 410:
				return last, op("wait for job "+job.ID, err)
			case st == 429:
				// The server's rate limit (several CLIs behind one
				// address): slow down rather than give up.
				throttled = true
			}
			if throttled {
				break
			}
			failures++
			if failures >= maxPollErrors {
				return last, op(fmt.Sprintf("wait for job %s (%d failed polls in a row)", job.ID, failures), err)
			}
		}
		if err == nil {
			line := fmt.Sprintf("waiting for job %s (%s) - %s, attempt %d, elapsed %s",
				last.ID, last.Type, last.State, last.Attempts, elapsed(time.Since(start)))
			if live {
				fmt.Fprintf(a.err, "\r\033[K%s", line)
				lastLine = line
			} else if !last.Terminal() {
				// Plain lines: one per change of state or attempt.
				key := last.State + "/" + fmt.Sprint(last.Attempts)
				if key != lastLine {
					fmt.Fprintln(a.err, line)
					lastLine = key
				}
			}
			if last.Terminal() {
				break
			}
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return last, withCode(exitTimeout, "timed out waiting for job %s after %s; check capydb jobs get --job-id %s later or raise --wait-timeout",
				job.ID, timeout, job.ID)
		}
		d := a.pace.jobPoll(n)
		if throttled {
			d = max(d, a.pace.throttled)
		}
		if d > remaining {
			d = remaining
		}
		if bgsvc.Sleep(a.ctx, d) != nil {
			return last, a.interrupted(job.ID)
		}
	}
	if live {
		fmt.Fprintln(a.err)
		lastLine = ""
	}
	if last.State != "completed" {
		return last, withCode(exitError, "%s ended in %s: %s", action, last.State, dash(strp(last.Error)))
	}
	return last, nil
}

func (a *app) interrupted(jobID string) error {
	if errors.Is(a.ctx.Err(), context.Canceled) {
		return withCode(exitError, "stopped waiting; job %s keeps running (check it with capydb jobs get --job-id %s)", jobID, jobID)
	}
	return a.ctx.Err()
}

// printJob prints a job: the Job object in JSON mode, the essentials in text.
func (a *app) printJob(j *apiclient.Job) error {
	if j == nil {
		return nil
	}
	if a.json {
		return printJSON(a.out, j)
	}
	fields(a.out, [][2]string{
		{"job_id", j.ID}, {"type", j.Type + " (" + jobLabel(j.Type) + ")"}, {"state", j.State},
		{"project_id", strp(j.ProjectID)}, {"error", strp(j.Error)},
	})
	return nil
}

// finishJob is the common tail of async commands: wait when asked, print
// the job, and return the wait's error (failed job, timeout, Ctrl-C).
func (a *app) finishJob(c *apiclient.Client, job *apiclient.Job, w waitOpts, action string) error {
	_, err := a.finishJobResult(c, job, w, action)
	return err
}

// finishJobResult is finishJob that also returns the last job seen.
func (a *app) finishJobResult(c *apiclient.Client, job *apiclient.Job, w waitOpts, action string) (*apiclient.Job, error) {
	if !w.wait {
		return job, a.printJob(job)
	}
	final, err := a.waitJob(c, job, w.timeout, action)
	if perr := a.printJob(final); perr != nil {
		return final, perr
	}
	return final, err
}

// jobResultString reads a string field of a job's result (read from the
// job's JSON, so it does not depend on how the result is typed).
func jobResultString(j *apiclient.Job, field string) string {
	if j == nil {
		return ""
	}
	b, err := json.Marshal(j)
	if err != nil {
		return ""
	}
	var doc struct {
		Result map[string]any `json:"result"`
	}
	if json.Unmarshal(b, &doc) != nil {
		return ""
	}
	s, _ := doc.Result[field].(string)
	return s
}
