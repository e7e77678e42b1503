package localcluster

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// portsFile remembers ports we picked ourselves so URLs stay stable.
type portsFile struct {
	DirectPort  int `json:"direct_port,omitempty"`
	PooledPort  int `json:"pooled_port,omitempty"`
	SessionPort int `json:"session_port,omitempty"`
}

// listenLocalOnly reports whether both servers listen on loopback only.
func (c *Cluster) listenLocalOnly() bool {
	return c.publicHost == "127.0.0.1" || c.publicHost == "localhost"
}

// listenAddress is where postgres and pgbouncer listen: loopback, or every
// interface when the public host is another name.
func (c *Cluster) listenAddress() string {
	if c.listenLocalOnly() {
		return "127.0.0.1"
	}
	return "*"
}

// resolvePorts picks the direct and pooled ports. Explicit ports must be
// free; otherwise a remembered or default port is used if free, else the
// first free port above the fallback base (remembered in ports.json).
func (c *Cluster) resolvePorts() error {
	path := filepath.Join(c.dataDir, "ports.json")
	var saved portsFile
	haveFile := false
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &saved); err != nil {
			c.log.Warn("ignoring unreadable ports file", "path", path, "error", err)
		} else {
			haveFile = true
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("while reading %s: %w", path, err)
	}

	direct, directFell, err := c.pickPort("--direct-port", c.cfg.DirectPort, defaultDirectPort, c.cfg.DirectPortExplicit, saved.DirectPort, cmp.Or(c.cfg.FallbackDirectBase, fallbackDirectBase), 0)
	if err != nil {
		return err
	}
	pooled, pooledFell, err := c.pickPort("--pooled-port", c.cfg.PooledPort, defaultPooledPort, c.cfg.PooledPortExplicit, saved.PooledPort, cmp.Or(c.cfg.FallbackPooledBase, fallbackPooledBase), direct)
	if err != nil {
		return err
	}
	session, sessionFell, err := c.pickPort("--session-port", c.cfg.SessionPort, defaultSessionPort, c.cfg.SessionPortExplicit, saved.SessionPort, cmp.Or(c.cfg.FallbackSessionBase, fallbackSessionBase), direct, pooled)
	if err != nil {
		return err
	}
	c.directPort, c.pooledPort, c.sessionPort = direct, pooled, session

	if !directFell && !pooledFell && !sessionFell && !haveFile {
		return nil
	}
	next := saved
	if !c.cfg.DirectPortExplicit {
		next.DirectPort = direct
	}
	if !c.cfg.PooledPortExplicit {
		next.PooledPort = pooled
	}
	if !c.cfg.SessionPortExplicit {
		next.SessionPort = session
	}
	if next == saved && haveFile {
		return nil
	}
	b, _ := json.MarshalIndent(next, "", "  ")
	if err := writeFileAtomic(path, append(b, '\n'), 0o644, nil); err != nil {
		return fmt.Errorf("while remembering ports in %s: %w", path, err)
	}
	return nil
}

// pickPort returns the port to use and whether it fell back from the wanted one.
func (c *Cluster) pickPort(flag string, configured, def int, explicit bool, remembered, base int, avoid ...int) (int, bool, error) {
	want := configured
	if want <= 0 {
		want = def
	}
	if explicit {
		if slices.Contains(avoid, want) {
			return 0, false, fmt.Errorf("%s %d is %w (it is also the %s port)", flag, want, ErrPortInUse, portName(want, avoid))
		}
		if reason := c.portBusy(want); reason != "" {
			return 0, false, fmt.Errorf("%s %d is %w (%s)", flag, want, ErrPortInUse, reason)
		}
		return want, false, nil
	}
	if remembered > 0 {
		want = remembered
	}
	reason := "it is also the " + portName(want, avoid) + " port"
	if !slices.Contains(avoid, want) {
		if reason = c.portBusy(want); reason == "" {
			return want, false, nil
		}
	}
	for p := base; p < base+1000 && p <= 65535; p++ {
		if slices.Contains(avoid, p) || p == want {
			continue
		}
		if c.portBusy(p) == "" {
			c.log.Warn("port is taken; using another one (pass "+flag+" to choose)",
				"flag", flag, "wanted", want, "reason", reason, "using", p)
			return p, true, nil
		}
	}
	return 0, false, fmt.Errorf("%s %d is %w (%s) and no free port was found from %d upward", flag, want, ErrPortInUse, reason, base)
}

// portName names p among avoid (the direct port, then the pooled one).
func portName(p int, avoid []int) string {
	if len(avoid) > 1 && p == avoid[1] {
		return "pooled"
	}
	return "direct"
}

// portBusy returns why port cannot be used, or "" when it is free.
func (c *Cluster) portBusy(port int) string {
	local := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if conn, err := net.DialTimeout("tcp", local, 300*time.Millisecond); err == nil {
		conn.Close()
		return "something accepts connections on " + local
	}
	bind := local
	if !c.listenLocalOnly() {
		bind = ":" + strconv.Itoa(port)
	}
	l, err := net.Listen("tcp", bind)
	if err != nil {
		return "cannot bind " + bind + ": " + err.Error()
	}
	l.Close()
	return ""
}
