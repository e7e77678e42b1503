// Package pglogs collects a cluster's Postgres server log (jsonlog files,
// one JSON object per line), attributes each entry to its database and
// stores it for the project log routes (docs/observability.md).
package pglogs

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/capydb/capydb/internal/scrub"
)

// Position is where reading stopped: a file of the log directory and the
// offset just past the last complete line read.
type Position struct {
	File   string
	Offset int64
}

// Entry is one parsed log entry.
type Entry struct {
	Time     time.Time
	Database string // "" = no database (server processes)
	User     string
	PID      int
	Severity string // lower case: debug, log, info, notice, warning, error, fatal, panic
	SQLState string
	Message  string
	// RemoteHost is the client's address ("" for server processes and
	// unix sockets): the ban watcher counts failed logins per address.
	RemoteHost string
}

// MaxMessage bounds a stored message (bytes); longer ones are cut at a
// character boundary and marked.
const MaxMessage = 8 << 10

// ReadChunk is what the collector reads at a time; a single line longer
// than that (a statement of several megabytes) is skipped.
const ReadChunk = 4 << 20

// jsonEntry is the subset of Postgres 15's jsonlog fields used.
type jsonEntry struct {
	Timestamp string `json:"timestamp"`
	User      string `json:"user"`
	DBName    string `json:"dbname"`
	PID       int    `json:"pid"`
	Severity  string `json:"error_severity"`
	StateCode string `json:"state_code"`
	Message   string `json:"message"`
	Detail    string `json:"detail"`
	Hint      string `json:"hint"`
	Statement string `json:"statement"`
	Remote    string `json:"remote_host"`
}

// secrets hides passwords of failed statements (ALTER ROLE … PASSWORD,
// connection URLs) before a line is stored.
var secrets = scrub.Default()

// parse reads one jsonlog line; ok is false for a line that is not an entry.
func parse(line []byte) (Entry, bool) {
	var j jsonEntry
	if err := json.Unmarshal(line, &j); err != nil {
		return Entry{}, false
	}
	ts, err := time.Parse("2006-01-02 15:04:05.000 MST", j.Timestamp)
	if err != nil {
		ts = time.Now()
	}
	msg := j.Message
	for _, part := range []struct{ name, text string }{{"DETAIL", j.Detail}, {"HINT", j.Hint}, {"STATEMENT", j.Statement}} {
		if part.text != "" {
			msg += "\n" + part.name + ":  " + part.text
		}
	}
	return Entry{Time: ts.UTC(), Database: j.DBName, User: j.User, PID: j.PID, Severity: severity(j.Severity),
		SQLState: j.StateCode, Message: bound(secrets.String(msg)), RemoteHost: j.Remote}, true
}

// severity maps Postgres' severities to the API's lower-case names.
func severity(s string) string {
	s = strings.ToLower(s)
	if strings.HasPrefix(s, "debug") {
		return "debug"
	}
	switch s {
	case "log", "info", "notice", "warning", "error", "fatal", "panic":
		return s
	}
	return "log"
}

// bound makes a message valid UTF-8 of at most MaxMessage bytes.
func bound(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= MaxMessage {
		return s
	}
	cut := MaxMessage - len(" …[truncated]")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + " …[truncated]"
}

// logFiles lists the jsonlog files of dir, oldest first (their names carry
// their creation time).
func logFiles(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(m))
	for i, p := range m {
		names[i] = filepath.Base(p)
	}
	slices.Sort(names)
	return names, nil
}

// Read reads complete lines from pos on, at most maxBytes of them (one line
// more when a single line is longer), moving to the next file once a file
// is read to its end and a newer one exists (rotation). A partial last line
// is left for the next call. It returns the entries and the new position.
func Read(dir string, pos Position, maxBytes int) ([]Entry, Position, error) {
	files, err := logFiles(dir)
	if err != nil || len(files) == 0 {
		return nil, pos, err
	}
	if pos.File == "" || !slices.Contains(files, pos.File) {
		// First run, or the file was removed: start at the oldest file
		// newer than the last one read.
		next := files[0]
		if pos.File != "" {
			i, _ := slices.BinarySearch(files, pos.File)
			if i >= len(files) {
				return nil, pos, nil
			}
			next = files[i]
		}
		pos = Position{File: next}
	}
	var out []Entry
	for {
		entries, next, atEOF, err := readFile(filepath.Join(dir, pos.File), pos.Offset, maxBytes)
		if err != nil {
			return out, pos, err
		}
		out = append(out, entries...)
		pos.Offset = next
		i := slices.Index(files, pos.File)
		if !atEOF || i+1 >= len(files) {
			return out, pos, nil
		}
		// The file is done and a newer one exists: postgres rotated and
		// never writes to the old one again.
		pos = Position{File: files[i+1]}
	}
}

// readFile reads complete lines of a file from offset.
func readFile(path string, offset int64, maxBytes int) ([]Entry, int64, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, offset, true, nil
	}
	if err != nil {
		return nil, offset, false, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, offset, false, err
	}
	buf := make([]byte, maxBytes)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, offset, false, err
	}
	buf = buf[:n]
	var out []Entry
	consumed := 0
	for {
		i := bytes.IndexByte(buf[consumed:], '\n')
		if i < 0 {
			break
		}
		if e, ok := parse(buf[consumed : consumed+i]); ok {
			out = append(out, e)
		}
		consumed += i + 1
	}
	if consumed == 0 && n == maxBytes {
		// One line longer than the buffer: skip it.
		skipped, ok, err := skipLine(f)
		if err != nil {
			return nil, offset, false, err
		}
		if !ok {
			return nil, offset, false, nil // still being written
		}
		return nil, offset + int64(n) + skipped, false, nil
	}
	atEOF := n < maxBytes && consumed == n
	return out, offset + int64(consumed), atEOF, nil
}

// skipLine reads up to the next newline; ok is false when none came yet.
func skipLine(f *os.File) (int64, bool, error) {
	var skipped int64
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return skipped + int64(i) + 1, true, nil
		}
		skipped += int64(n)
		if errors.Is(err, io.EOF) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
	}
}
