// Command capybench measures CapyDB: provisioning latency against the
// bare-SQL floor, the job queue's throughput and pickup latency, and how
// many projects one server provisions per second (with its memory and disk
// at N projects). It writes bench/results/<name>.json and summary.md.
//
//	go run ./bench/cmd/capybench -out bench/results [-only provision,queue,density]
//	    [-provision-n 100] [-density-n 1000]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	out          string
	only         map[string]bool
	provisionN   int
	densityN     int
	densityConc  int
	warmup       int
	poll         time.Duration
	densityPoll  time.Duration
	jobTimeout   time.Duration
	bin          string
	tmpBase      string
	pickupN      int
	queueJobs    int
	queueBatch   int
	queueDurable bool
	floorMode    string
	strategyN    int
	idleWindow   time.Duration
	nproc        int
	machine      Machine
	runID        string
	args         []string
	gitRev       string
	// perf (perfbench.go)
	perfPool       int
	pooledClients  int
	pooledDuration time.Duration
	apiDuration    time.Duration
}

var allBenchmarks = []string{"provision", "queue", "density", "webhooks", "perf"}

func main() {
	o := &options{}
	var only, bin string
	var rebuild bool
	flag.StringVar(&o.out, "out", "bench/results", "directory for <name>.json and summary.md")
	flag.StringVar(&only, "only", strings.Join(allBenchmarks, ","), "benchmarks to run: provision, queue, density, webhooks, perf")
	flag.IntVar(&o.provisionN, "provision-n", 100, "projects per concurrency level in the provision benchmark (and floor iterations)")
	flag.IntVar(&o.densityN, "density-n", 1000, "projects created in the density benchmark")
	flag.IntVar(&o.densityConc, "density-concurrency", 10, "concurrent clients in the density benchmark")
	flag.IntVar(&o.warmup, "warmup", 5, "uncounted projects provisioned before the provision benchmark")
	flag.DurationVar(&o.poll, "poll", 2*time.Millisecond, "job polling interval in the provision benchmark")
	flag.DurationVar(&o.densityPoll, "density-poll", 25*time.Millisecond, "job polling interval in the density benchmark")
	flag.DurationVar(&o.jobTimeout, "job-timeout", 2*time.Minute, "give up on one job after this long")
	flag.StringVar(&bin, "bin", "", "capydb binary (default bin/capydb; built into a temp dir when missing)")
	flag.BoolVar(&rebuild, "build", false, "always build a fresh capydb binary into a temp dir")
	flag.StringVar(&o.tmpBase, "tmpdir", os.TempDir(), "where servers put their data dirs (on disk: that is what production does)")
	flag.IntVar(&o.pickupN, "pickup-n", 500, "sequential jobs for the queue pickup latency")
	flag.IntVar(&o.queueJobs, "queue-jobs", 5000, "no-op jobs per queue throughput run")
	flag.IntVar(&o.queueBatch, "queue-batch", 100, "jobs per enqueue transaction in the throughput runs")
	flag.StringVar(&o.floorMode, "floor", "interleaved", "bare-SQL floor: interleaved (one floor step before each c=1 project) or before (all first)")
	flag.IntVar(&o.strategyN, "strategy-n", 10, "CREATE DATABASE … STRATEGY WAL_LOG vs FILE_COPY iterations in the provision benchmark (0 = skip)")
	flag.DurationVar(&o.idleWindow, "idle-window", 10*time.Second, "how long the density benchmark watches the idle server at 0 and N projects")
	flag.BoolVar(&o.queueDurable, "queue-durable", false, "queue benchmark on a durable cluster on disk instead of clustertest's fast tmpfs cluster")
	flag.StringVar(&serverLogLevel, "server-log-level", "warn", "--log-level of the servers (their log is kept next to the temp dir when something fails)")
	flag.StringVar(&o.gitRev, "rev", "", "source revision to record (default: git describe --tags --always --dirty)")
	flag.IntVar(&o.perfPool, "perf-pool", 100, "perf: the server's --warm-pool (the c=20 burst creates min(100, this) projects)")
	flag.IntVar(&o.pooledClients, "pooled-clients", 5000, "perf: concurrent clients on one project's pooled URL (0 = skip)")
	flag.DurationVar(&o.pooledDuration, "pooled-duration", time.Minute, "perf: how long each pooled client runs one transaction a second")
	flag.DurationVar(&o.apiDuration, "api-round", 5*time.Second, "perf: length of each API / bare-handler load round (2 rounds each, after one warm-up round)")
	flag.Parse()
	o.args = os.Args[1:]

	o.only = map[string]bool{}
	for _, b := range splitComma(only) {
		if !contains(allBenchmarks, b) {
			fatalf("-only: unknown benchmark %q (want %s)", b, strings.Join(allBenchmarks, ", "))
		}
		o.only[b] = true
	}
	if o.floorMode != "interleaved" && o.floorMode != "before" {
		fatalf("-floor must be interleaved or before")
	}
	if o.provisionN < 1 || o.densityN < 1 || o.densityConc < 1 || o.pickupN < 1 || o.queueJobs < 1 || o.queueBatch < 1 {
		fatalf("counts must be positive")
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\ncapybench: %v: stopping (again to force)\n", sig)
		stop()
		<-sigs
		fmt.Fprintln(os.Stderr, "capybench: forced exit; cleaning up")
		runFinalCleanups()
		os.Exit(130)
	}()

	code := run(ctx, o, bin, rebuild)
	runFinalCleanups()
	os.Exit(code)
}

func run(ctx context.Context, o *options, bin string, rebuild bool) int {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		logf("error: %v", err)
		return 1
	}
	o.machine = machineInfo()
	o.nproc = o.machine.Nproc
	o.runID = randomHex(3)
	if o.gitRev == "" {
		o.gitRev = gitRev()
	}
	logf("machine: %d cores (%s), %d MiB RAM, %s, load %s", o.nproc, o.machine.CPUModel, o.machine.MemTotalMiB, o.machine.Postgres, o.machine.LoadAvg)

	if o.only["provision"] || o.only["density"] || o.only["webhooks"] || o.only["clone"] || o.only["backup"] || o.only["cliwait"] || o.only["studio"] || o.only["pitr"] || o.only["perf"] || o.only["list"] {
		var err error
		if o.bin, err = resolveBinary(ctx, bin, rebuild); err != nil {
			logf("error: %v", err)
			return 1
		}
	}

	failed := false
	for _, name := range allBenchmarks {
		if !o.only[name] || ctx.Err() != nil {
			continue
		}
		logf("=== %s ===", name)
		var res any
		var err error
		var bctx context.Context
		var cancel context.CancelFunc
		switch name {
		case "provision":
			bctx, cancel = context.WithTimeout(ctx, 45*time.Minute)
			res, err = runProvision(bctx, o)
		case "queue":
			bctx, cancel = context.WithTimeout(ctx, 30*time.Minute)
			res, err = runQueue(bctx, o)
		case "density":
			bctx, cancel = context.WithTimeout(ctx, 90*time.Minute)
			res, err = runDensity(bctx, o)
		case "webhooks":
			bctx, cancel = context.WithTimeout(ctx, 30*time.Minute)
			res, err = runWebhooks(bctx, o)
		case "clone": // clonebench.go
			bctx, cancel = context.WithTimeout(ctx, 45*time.Minute)
			res, err = runClone(bctx, o)
		case "backup": // backupbench.go
			bctx, cancel = context.WithTimeout(ctx, 45*time.Minute)
			res, err = runBackupBench(bctx, o)
		case "pitr": // pitrbench.go
			bctx, cancel = context.WithTimeout(ctx, 45*time.Minute)
			res, err = runPITRBench(bctx, o)
		case "cliwait": // cliwaitbench.go
			bctx, cancel = context.WithTimeout(ctx, 15*time.Minute)
			res, err = runCLIWait(bctx, o)
		case "perf": // perfbench.go
			bctx, cancel = context.WithTimeout(ctx, 30*time.Minute)
			res, err = runPerf(bctx, o)
		case "list": // listbench.go
			bctx, cancel = context.WithTimeout(ctx, 15*time.Minute)
			res, err = runList(bctx, o)
		case "studio": // studiobench.go
			bctx, cancel = context.WithTimeout(ctx, 20*time.Minute)
			res, err = runStudioBench(bctx, o)
		}
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w (benchmark time limit)", err)
			}
			logf("error: %s benchmark: %v", name, err)
			failed = true
			continue
		}
		runCleanups() // servers and clusters of this benchmark are gone before the next starts
		file := name
		if name == "queue" && o.queueDurable {
			file = "queue-durable"
		}
		path := filepath.Join(o.out, file+".json")
		if err := writeJSON(path, res); err != nil {
			logf("error: %v", err)
			failed = true
			continue
		}
		logf("wrote %s", path)
	}
	if err := writeSummary(o.out); err != nil {
		logf("error: writing the summary: %v", err)
		return 1
	}
	appendWebhookSummary(o.out)
	appendBackupSummary(o.out)  // backupbench.go
	appendCLIWaitSummary(o.out) // cliwaitbench.go
	appendStudioSummary(o.out)  // studiobench.go
	appendPITRSummary(o.out)    // pitrbench.go
	appendPerfSummary(o.out)    // perfbench.go
	appendListSummary(o.out)    // listbench.go
	logf("wrote %s", filepath.Join(o.out, "summary.md"))
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

// resolveBinary finds (or builds) the capydb binary.
func resolveBinary(ctx context.Context, bin string, rebuild bool) (string, error) {
	if bin != "" && !rebuild {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("-bin %s: %w", bin, err)
		}
		return filepath.Abs(bin)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	def := filepath.Join(root, "bin", "capydb")
	if !rebuild {
		if st, err := os.Stat(def); err == nil && !st.IsDir() {
			logf("using %s (built %s; run `make build` or pass -build for a fresh one)", def, st.ModTime().Format(time.RFC3339))
			return def, nil
		}
	}
	dir, err := os.MkdirTemp("", "capybench-bin-")
	if err != nil {
		return "", err
	}
	registerFinalCleanup(func() { os.RemoveAll(dir) })
	out := filepath.Join(dir, "capydb")
	logf("building %s", out)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/capydb")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/capydb: %w", err)
	}
	return out, nil
}

// moduleRoot walks up from the working directory to CapyDB's go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/capydb/capydb\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run capybench inside the capydb module (go.mod not found)")
		}
		dir = parent
	}
}

func gitRev() string {
	out, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Meta is common to every result file.
type Meta struct {
	Benchmark  string    `json:"benchmark,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
	DurationS  float64   `json:"duration_s"`
	Machine    Machine   `json:"machine"`
	LoadAvgEnd string    `json:"loadavg_at_end"`
	GitRev     string    `json:"git_rev"`
	Args       []string  `json:"args"`
	CPUProbe   *CPUProbe `json:"host_cpu_probe,omitempty"`

	mon *cpuMonitor
}

func newMeta(o *options) Meta {
	m := o.machine
	m.LoadAvg = loadavg()
	return Meta{Started: time.Now().UTC().Truncate(time.Second), Machine: m, GitRev: o.gitRev, Args: o.args, mon: startCPUMonitor()}
}

func (m *Meta) finish() {
	m.Finished = time.Now().UTC().Truncate(time.Second)
	m.DurationS = round3(m.Finished.Sub(m.Started).Seconds())
	m.LoadAvgEnd = loadavg()
	m.CPUProbe = m.mon.finish()
	m.mon = nil
}

// Target is a goal and whether this run met it.
type Target struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Pass  bool   `json:"pass"`
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ---- cleanup ----

var (
	cleanupMu sync.Mutex
	cleanups  []func()
	finals    []func()
)

// registerFinalCleanup adds f to what runs only when capybench exits.
func registerFinalCleanup(f func()) {
	cleanupMu.Lock()
	finals = append(finals, f)
	cleanupMu.Unlock()
}

func runFinalCleanups() {
	runCleanups()
	cleanupMu.Lock()
	fs := finals
	finals = nil
	cleanupMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// registerCleanup adds f to what runs at exit (also on Ctrl-C), newest first.
func registerCleanup(f func()) {
	cleanupMu.Lock()
	cleanups = append(cleanups, f)
	cleanupMu.Unlock()
}

func runCleanups() {
	cleanupMu.Lock()
	fs := cleanups
	cleanups = nil
	cleanupMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// ---- misc ----

var logMu sync.Mutex

func logf(format string, a ...any) {
	logMu.Lock()
	defer logMu.Unlock()
	fmt.Fprintf(os.Stderr, "%s capybench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "capybench: "+format+"\n", a...)
	os.Exit(2)
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
