package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/capydb/capydb/internal/scram"
)

// Machine describes where the numbers were taken.
type Machine struct {
	Hostname        string  `json:"hostname"`
	Nproc           int     `json:"nproc"`
	CPUModel        string  `json:"cpu_model"`
	MemTotalMiB     int64   `json:"mem_total_mib"`
	MemAvailableMiB int64   `json:"mem_available_mib"`
	Kernel          string  `json:"kernel"`
	GoVersion       string  `json:"go_version"`
	Postgres        string  `json:"postgres_version"`
	PgBouncer       string  `json:"pgbouncer_version"`
	LoadAvg         string  `json:"loadavg_at_start"`
	Load1           float64 `json:"load1_at_start"`
}

func machineInfo() Machine {
	m := Machine{GoVersion: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	if out, err := exec.Command("nproc").Output(); err == nil {
		m.Nproc, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	}
	if m.Nproc == 0 {
		m.Nproc = runtime.NumCPU()
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	mi := meminfo()
	m.MemTotalMiB, m.MemAvailableMiB = mi["MemTotal"]/1024, mi["MemAvailable"]/1024
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Postgres = postgresVersion()
	if out, err := exec.Command("pgbouncer", "--version").Output(); err == nil {
		m.PgBouncer = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	} else if out, err := exec.Command("/usr/sbin/pgbouncer", "--version").Output(); err == nil {
		m.PgBouncer = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	m.LoadAvg = loadavg()
	if f := strings.Fields(m.LoadAvg); len(f) > 0 {
		m.Load1, _ = strconv.ParseFloat(f[0], 64)
	}
	return m
}

// postgresVersion asks the server binary the localcluster would pick: the
// newest /usr/lib/postgresql/*/bin/postgres, else pg_config --bindir.
func postgresVersion() string {
	cands, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	sort.Slice(cands, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(cands[i]))))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(cands[j]))))
		return a > b
	})
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		cands = append(cands, filepath.Join(strings.TrimSpace(string(out)), "postgres"))
	}
	for _, c := range cands {
		if out, err := exec.Command(c, "--version").Output(); err == nil {
			return strings.TrimSpace(string(out))
		}
	}
	return "unknown"
}

func meminfo() map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			out[k] = n // kB
		}
	}
	return out
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return strings.TrimSpace(string(b))
}

// ---- processes ----

var clkTck = 100.0 // USER_HZ; 100 on every Linux we run on

type procStat struct {
	pid, ppid int
	comm      string
	ticks     float64 // utime + stime + cutime + cstime
	ownTicks  float64 // utime + stime
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// comm is in parentheses and may contain spaces.
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return procStat{}, fmt.Errorf("bad stat for %d", pid)
	}
	ps := procStat{pid: pid, comm: string(b[open+1 : close])}
	f := strings.Fields(string(b[close+1:]))
	// f[0]=state f[1]=ppid ... f[11]=utime f[12]=stime f[13]=cutime f[14]=cstime
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("short stat for %d", pid)
	}
	ps.ppid, _ = strconv.Atoi(f[1])
	var t [4]float64
	for i := range t {
		t[i], _ = strconv.ParseFloat(f[11+i], 64)
	}
	ps.ownTicks = t[0] + t[1]
	ps.ticks = t[0] + t[1] + t[2] + t[3]
	return ps, nil
}

// allProcs reads every process's stat.
func allProcs() map[int]procStat {
	out := map[int]procStat{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ps, err := readProcStat(pid); err == nil {
			out[pid] = ps
		}
	}
	return out
}

// descendants returns root's descendants (not root itself).
func descendants(procs map[int]procStat, root int) []procStat {
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	var out []procStat
	stack := []int{root}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range children[p] {
			out = append(out, procs[c])
			stack = append(stack, c)
		}
	}
	return out
}

// kindOf groups a process by its command name.
func kindOf(comm string) string {
	switch {
	case strings.HasPrefix(comm, "postgres") || strings.HasPrefix(comm, "postmaster"):
		return "postgres"
	case strings.HasPrefix(comm, "pgbouncer"):
		return "pgbouncer"
	}
	return "other"
}

// statusKB reads a "Key:   123 kB" line from /proc/<pid>/status or smaps_rollup.
func statusKB(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, key+":") {
			fs := strings.Fields(line[len(key)+1:])
			if len(fs) > 0 {
				n, _ := strconv.ParseInt(fs[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// MemGroup is the memory of a group of processes. RSS counts shared pages
// (postgres shared_buffers, binaries) once per process; PSS splits them.
type MemGroup struct {
	Processes int     `json:"processes"`
	RSSMiB    float64 `json:"rss_mib"`
	PSSMiB    float64 `json:"pss_mib"`
}

// Memory is the memory of the server process and its children.
type Memory struct {
	ServerRSSMiB  float64             `json:"server_vmrss_mib"`
	ServerPSSMiB  float64             `json:"server_pss_mib"`
	ServerHWMMiB  float64             `json:"server_vmhwm_mib"`
	Children      MemGroup            `json:"children_total"`
	ChildrenByCmd map[string]MemGroup `json:"children_by_kind"`
}

func memoryOf(pid int) Memory {
	m := Memory{ChildrenByCmd: map[string]MemGroup{}}
	st := fmt.Sprintf("/proc/%d/status", pid)
	m.ServerRSSMiB = round3(float64(statusKB(st, "VmRSS")) / 1024)
	m.ServerHWMMiB = round3(float64(statusKB(st, "VmHWM")) / 1024)
	m.ServerPSSMiB = round3(float64(statusKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss")) / 1024)
	for _, c := range descendants(allProcs(), pid) {
		rss := float64(statusKB(fmt.Sprintf("/proc/%d/status", c.pid), "VmRSS")) / 1024
		pss := float64(statusKB(fmt.Sprintf("/proc/%d/smaps_rollup", c.pid), "Pss")) / 1024
		k := kindOf(c.comm)
		g := m.ChildrenByCmd[k]
		g.Processes++
		g.RSSMiB = round3(g.RSSMiB + rss)
		g.PSSMiB = round3(g.PSSMiB + pss)
		m.ChildrenByCmd[k] = g
		m.Children.Processes++
		m.Children.RSSMiB = round3(m.Children.RSSMiB + rss)
		m.Children.PSSMiB = round3(m.Children.PSSMiB + pss)
	}
	return m
}

// ---- CPU accounting ----

// cpuSnap is a snapshot of machine-wide and per-group CPU time.
type cpuSnap struct {
	at     time.Time
	busy   float64 // machine-wide busy jiffies
	groups map[string]float64
	pg     map[string]float64 // postgres by process role
}

// CPUUse is how CPU was spent between two snapshots, in core-seconds.
type CPUUse struct {
	WallS       float64            `json:"wall_s"`
	MachineBusy float64            `json:"machine_busy_core_s"`
	Ours        map[string]float64 `json:"ours_core_s"`
	Others      float64            `json:"other_processes_core_s"`
	// OthersPct is the share of the machine's total capacity (nproc × wall)
	// used by processes that are not this benchmark or its server.
	OthersPct float64 `json:"other_processes_pct_of_machine"`
	// Postgres splits the "postgres" group by process role; "exited" is
	// processes that ended during the window (client backends, autovacuum
	// workers), accounted to the postmaster when it reaped them.
	Postgres map[string]float64 `json:"postgres_by_role_core_s,omitempty"`
}

// pgRole names a postgres process by its title ("postgres: checkpointer").
func pgRole(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "other"
	}
	title := strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
	rest, ok := strings.CutPrefix(title, "postgres: ")
	if !ok {
		return "postmaster"
	}
	for _, r := range []string{"checkpointer", "background writer", "walwriter", "autovacuum launcher", "autovacuum worker",
		"logical replication launcher", "stats collector", "archiver"} {
		if strings.HasPrefix(rest, r) {
			return r
		}
	}
	return "client backends"
}

func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i > 7 { // guest, guest_nice are included in user
			break
		}
		x, _ := strconv.ParseFloat(v, 64)
		busy += x
	}
	return busy
}

// snapCPU groups our own process ("bench"), and the descendants of self
// (in-process cluster) and of serverPid (0 = none) by kind.
func snapCPU(serverPid int) cpuSnap {
	s := cpuSnap{at: time.Now(), busy: machineBusy(), groups: map[string]float64{}, pg: map[string]float64{}}
	addPg := func(p procStat) {
		if kindOf(p.comm) != "postgres" {
			return
		}
		role := pgRole(p.pid)
		if role == "postmaster" {
			s.pg["postmaster"] += p.ownTicks
			s.pg["exited"] += p.ticks - p.ownTicks
			return
		}
		s.pg[role] += p.ticks
	}
	procs := allProcs()
	self := os.Getpid()
	if p, ok := procs[self]; ok {
		s.groups["bench"] += p.ownTicks
	}
	for _, d := range descendants(procs, self) {
		if serverPid != 0 && d.pid == serverPid {
			s.groups["server"] += d.ownTicks
			continue
		}
		if serverPid != 0 && isUnder(procs, d.pid, serverPid) {
			continue // counted below
		}
		s.groups[kindOf(d.comm)] += d.ticks
		addPg(d)
	}
	if serverPid != 0 {
		for _, d := range descendants(procs, serverPid) {
			s.groups[kindOf(d.comm)] += d.ticks
			addPg(d)
		}
	}
	return s
}

func isUnder(procs map[int]procStat, pid, ancestor int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		p, ok := procs[pid]
		if !ok {
			return false
		}
		if p.ppid == ancestor {
			return true
		}
		pid = p.ppid
	}
	return false
}

func cpuBetween(a, b cpuSnap, nproc int) CPUUse {
	u := CPUUse{WallS: round3(b.at.Sub(a.at).Seconds()), Ours: map[string]float64{}}
	u.MachineBusy = round3((b.busy - a.busy) / clkTck)
	var ours float64
	for k, v := range b.groups {
		d := (v - a.groups[k]) / clkTck
		if d < 0 {
			d = 0
		}
		u.Ours[k] = round3(d)
		ours += d
	}
	u.Others = round3(max(0, u.MachineBusy-ours))
	if len(b.pg) > 0 {
		u.Postgres = map[string]float64{}
		for k, v := range b.pg {
			// A live backend that started in the window has no "before".
			if d := (v - a.pg[k]) / clkTck; d >= 0.005 {
				u.Postgres[k] = round3(d)
			}
		}
	}
	if u.WallS > 0 && nproc > 0 {
		u.OthersPct = round3(100 * u.Others / (u.WallS * float64(nproc)))
	}
	return u
}

// ---- disk ----

// diskUsage sums allocated blocks under dir (like du), in MiB.
func diskUsage(dir string) float64 {
	var total int64
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	return round3(float64(total) / (1 << 20))
}

func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case 0x01021994:
		return "tmpfs"
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ---- host CPU speed ----

// CPUProbe is a fixed single-threaded workload (5 SCRAM verifiers, i.e.
// 5 × PBKDF2-SHA256 with 4096 rounds) timed every 2 s during a benchmark.
// On a shared VM the same work can take several times longer when the host
// is busy; other_processes_pct cannot see that.
type CPUProbe struct {
	Samples   int     `json:"samples"`
	FastestMs float64 `json:"fastest_ms"`
	P50Ms     float64 `json:"p50_ms"`
	MaxMs     float64 `json:"max_ms"`
	// SlowdownP50 is p50 / fastest: 1.0 means the run had the CPU it could.
	SlowdownP50 float64 `json:"slowdown_p50"`
	SlowdownMax float64 `json:"slowdown_max"`
}

type cpuMonitor struct {
	stop    chan struct{}
	done    chan struct{}
	samples []float64
}

func startCPUMonitor() *cpuMonitor {
	m := &cpuMonitor{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			m.samples = append(m.samples, probeOnce())
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func probeOnce() float64 {
	start := time.Now()
	for range 5 {
		_, _ = scram.Verifier("capybench-cpu-probe")
	}
	return ms(time.Since(start))
}

func (m *cpuMonitor) finish() *CPUProbe {
	if m == nil {
		return nil
	}
	close(m.stop)
	<-m.done
	d := summarize(m.samples)
	p := &CPUProbe{Samples: d.N, FastestMs: d.Min, P50Ms: d.P50, MaxMs: d.Max}
	if d.Min > 0 {
		p.SlowdownP50, p.SlowdownMax = round3(d.P50/d.Min), round3(d.Max/d.Min)
	}
	return p
}
