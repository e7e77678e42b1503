package main

// The write load of the clone benchmark: pgbench in back-to-back short runs.

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadRunner keeps pgbench -c N running in back-to-back short runs (so it
// can stop soon after the measured operation) and adds up their reports.
type loadRunner struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	load    Load
	samples []tpsSample // per-second progress lines
	marks   []time.Time
	errs    []string
	started time.Time
}

type tpsSample struct {
	at  time.Time
	tps float64
}

var (
	reFailed = regexp.MustCompile(`number of failed transactions: (\d+)`)
	reTx     = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	reProg   = regexp.MustCompile(`^progress: [\d.]+ s, ([\d.]+) tps`)
)

func startLoad(parent context.Context, pgbench, url string, clients int) *loadRunner {
	ctx, cancel := context.WithCancel(parent)
	l := &loadRunner{cancel: cancel, done: make(chan struct{}), started: time.Now()}
	l.load.Clients = clients
	go func() {
		defer close(l.done)
		for ctx.Err() == nil {
			secs := strconv.Itoa(int(cloneLoadStep.Seconds()))
			cmd := exec.Command(pgbench, "-n", "-c", strconv.Itoa(clients), "-j", "2", "-T", secs, "-P", "1", url)
			stdout, _ := cmd.StdoutPipe()
			var stderr strings.Builder
			errPipe, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				l.addErr(err.Error())
				return
			}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // progress lines arrive on stderr
				defer wg.Done()
				sc := bufio.NewScanner(errPipe)
				for sc.Scan() {
					line := sc.Text()
					if m := reProg.FindStringSubmatch(line); m != nil {
						v, _ := strconv.ParseFloat(m[1], 64)
						l.mu.Lock()
						l.samples = append(l.samples, tpsSample{time.Now(), v})
						l.mu.Unlock()
					} else {
						stderr.WriteString(line + "\n")
					}
				}
			}()
			out, _ := io.ReadAll(stdout)
			wg.Wait()
			err := cmd.Wait()
			l.mu.Lock()
			if m := reFailed.FindStringSubmatch(string(out)); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				l.load.Failed += n
			}
			if m := reTx.FindStringSubmatch(string(out)); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				l.load.Transactions += n
			}
			if err != nil {
				l.load.AbortedRuns++
				l.errs = append(l.errs, tail(stderr.String(), 300))
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *loadRunner) addErr(s string) {
	l.mu.Lock()
	l.errs = append(l.errs, s)
	l.mu.Unlock()
}

func (l *loadRunner) warmup(ctx context.Context, d time.Duration) error { return sleepCtx(ctx, d) }

func (l *loadRunner) mark() {
	l.mu.Lock()
	l.marks = append(l.marks, time.Now())
	l.mu.Unlock()
}

// stop lets the current pgbench run finish (its report counts) and sums up.
func (l *loadRunner) stop() *Load {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.load
	if len(l.marks) >= 2 {
		from, to := l.marks[0], l.marks[len(l.marks)-1]
		var before, during []float64
		for _, s := range l.samples {
			switch {
			case s.at.Before(from):
				before = append(before, s.tps)
			case s.at.Before(to.Add(time.Second)):
				during = append(during, s.tps)
			}
		}
		out.TPSBefore, out.TPSDuring = round3(mean(before)), round3(mean(during))
	}
	if len(l.errs) > 0 {
		out.PgbenchErrors = strings.Join(l.errs, " | ")
	}
	return &out
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
