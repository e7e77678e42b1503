package localcluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// initdbTemplateVersion changes whenever runInitdb's arguments change, so
// old templates are never reused.
const initdbTemplateVersion = "v1"

// copyInitdbTemplate fills dst (an empty PGDATA) from a per-machine
// template made by one initdb, and adopts the template's admin password.
//
// Fast mode only (tests): initdb costs ~1.3 s of a ~1.6 s fresh start,
// copying the template ~0.1 s, and every test package starts a cluster.
// The price, acceptable for throwaway test clusters only, is that all
// clusters made from one template share the admin password and system
// identifier.
func (c *Cluster) copyInitdbTemplate(ctx context.Context, dst string) error {
	tmpl, err := c.initdbTemplate(ctx)
	if err != nil {
		return err
	}
	pw, err := os.ReadFile(filepath.Join(tmpl, "admin-password"))
	if err != nil {
		return err
	}
	if err := copyTree(filepath.Join(tmpl, "pg"), dst, c.owner); err != nil {
		return fmt.Errorf("while copying the initdb template: %w", err)
	}
	password := strings.TrimSpace(string(pw))
	if err := writeFileAtomic(filepath.Join(c.dataDir, "admin-password"), []byte(password+"\n"), 0o600, nil); err != nil {
		return err
	}
	c.password = password
	return nil
}

// initdbTemplate returns the template directory (pg/ and admin-password),
// creating it under an exclusive flock so that test binaries starting at
// the same moment run initdb once, not once each.
func (c *Cluster) initdbTemplate(ctx context.Context) (string, error) {
	root := filepath.Join(os.TempDir(), fmt.Sprintf("capydb-initdb-template-%d", os.Geteuid()))
	if err := os.MkdirAll(root, 0o711); err != nil {
		return "", err
	}
	// In a shared /tmp, only trust a directory that is ours and not a symlink.
	fi, err := os.Lstat(root)
	if err != nil {
		return "", err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || !fi.IsDir() || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return "", fmt.Errorf("%s is not a private directory of ours", root)
	}
	if c.owner != nil {
		// initdb runs as postgres and must reach its target inside root.
		if err := os.Chmod(root, 0o711); err != nil {
			return "", err
		}
	}
	key, err := c.templateKey()
	if err != nil {
		return "", err
	}
	tmpl := filepath.Join(root, key)
	if templateComplete(tmpl) {
		return tmpl, nil
	}

	lock, err := os.OpenFile(tmpl+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if templateComplete(tmpl) {
		return tmpl, nil
	}

	c.log.Info("creating the initdb template for fast test clusters", "dir", tmpl)
	tmp := tmpl + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := os.Mkdir(tmp, 0o711); err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	pg := filepath.Join(tmp, "pg")
	if err := os.Mkdir(pg, 0o700); err != nil {
		return "", err
	}
	if err := c.owner.chown(pg); err != nil {
		return "", err
	}
	password := randomPassword(32)
	if err := c.runInitdb(ctx, pg, password); err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(tmp, "admin-password"), []byte(password+"\n"), 0o600, nil); err != nil {
		return "", err
	}
	if err := os.RemoveAll(tmpl); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, tmpl); err != nil {
		return "", err
	}
	return tmpl, nil
}

// templateKey identifies the server build and the initdb arguments.
func (c *Cluster) templateKey() (string, error) {
	fi, err := os.Stat(filepath.Join(c.binDir, "postgres"))
	if err != nil {
		return "", err
	}
	owner := "self"
	if c.owner != nil {
		owner = fmt.Sprint(c.owner.uid)
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%d|%d|%s", initdbTemplateVersion, c.binDir, fi.Size(), fi.ModTime().UnixNano(), owner))
	return "pg" + c.major + "-" + hex.EncodeToString(h[:8]), nil
}

func templateComplete(dir string) bool {
	for _, f := range []string{"pg/PG_VERSION", "admin-password"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// copyTree copies the regular files and directories under src into the
// existing directory dst, keeping permissions, owned by owner when set.
func copyTree(src, dst string, owner *osUser) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(p, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return errors.New("unexpected non-regular file " + p)
		}
		return owner.chown(target)
	})
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	// io.Copy between files uses copy_file_range, which can share extents.
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
