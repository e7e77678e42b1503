package localcluster

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// osUser is the unprivileged account postgres and pgbouncer run as when we
// are root (both refuse to run as root).
type osUser struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32
}

func lookupUser(name string) (*osUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	if uid == 0 {
		return nil, fmt.Errorf("user %q has uid 0", name)
	}
	ou := &osUser{name: name, uid: uint32(uid), gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.ParseUint(s, 10, 32); err == nil {
				ou.groups = append(ou.groups, uint32(g))
			}
		}
	}
	return ou, nil
}

func (u *osUser) credential() *syscall.Credential {
	return &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: u.groups}
}

// chown gives path to u; a nil user (not root) leaves ownership alone.
func (u *osUser) chown(path string) error {
	if u == nil {
		return nil
	}
	return os.Lchown(path, int(u.uid), int(u.gid))
}

func (u *osUser) chownTree(root string) error {
	if u == nil {
		return nil
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(u.uid), int(u.gid))
	})
}

// ownedBy reports whether path belongs to u.
func (u *osUser) ownedBy(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == u.uid && st.Gid == u.gid
}

// chownTrees hands the directories the children write to over to the
// postgres user. PGDATA can hold hundreds of thousands of files, so it is
// only walked when its top directory is not already owned (initdb runs as
// postgres, and the files we write are chowned one by one).
func (c *Cluster) chownTrees() error {
	for _, d := range []string{c.tlsDir, c.bouncerDir} {
		if err := c.owner.chownTree(d); err != nil {
			return fmt.Errorf("while handing %s to user %s: %w", d, c.owner.name, err)
		}
	}
	if !c.owner.ownedBy(c.pgData) {
		if err := c.owner.chownTree(c.pgData); err != nil {
			return fmt.Errorf("while handing %s to user %s: %w", c.pgData, c.owner.name, err)
		}
	}
	return nil
}

// ensureTraversable makes sure u can reach dir: every ancestor, and dir
// itself, needs search permission. Only o+x is added (never read), and
// each change is logged because it alters a directory we do not own.
func ensureTraversable(dir string, u *osUser, log *slog.Logger) error {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("while checking %s: %w", p, err)
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		canSearch := mode&0o001 != 0 ||
			(st != nil && st.Uid == u.uid && mode&0o100 != 0) ||
			(st != nil && u.inGroup(st.Gid) && mode&0o010 != 0)
		if !canSearch {
			log.Warn("adding o+x so the postgres user can reach the data dir", "dir", p, "old_mode", mode.String())
			if err := os.Chmod(p, fi.Mode()|0o001); err != nil {
				return fmt.Errorf("while making %s traversable for user %s: %w", p, u.name, err)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (u *osUser) inGroup(gid uint32) bool {
	if gid == u.gid {
		return true
	}
	for _, g := range u.groups {
		if g == gid {
			return true
		}
	}
	return false
}

// mkdirNew is MkdirAll that reports whether dir did not exist before.
func mkdirNew(dir string, perm os.FileMode) (bool, error) {
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, os.MkdirAll(dir, perm)
}
