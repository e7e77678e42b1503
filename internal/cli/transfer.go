package cli

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/capydb/capydb/internal/apiclient"
)

// transfer returns the client for signed upload/download URLs: no
// Authorization, a 30-minute deadline unless CAPYDB_HTTP_TIMEOUT is set, and
// progress on stderr (a rewritten line on a terminal, a line every 5 s
// otherwise). done ends the progress line.
func (a *app) transfer(verb string) (t *apiclient.Transfer, done func(), err error) {
	timeout := apiclient.DefaultTransferTimeout
	if os.Getenv("CAPYDB_HTTP_TIMEOUT") != "" {
		if timeout, err = httpTimeout(); err != nil {
			return nil, nil, err
		}
	}
	t = apiclient.NewTransfer(Version, timeout)
	var mu sync.Mutex
	var last time.Time
	var printed bool
	every := 5 * time.Second
	if a.stderrTTY {
		every = 200 * time.Millisecond
	}
	line := func(n, total int64) string {
		if total > 0 {
			return fmt.Sprintf("%s %s of %s (%d%%)", verb, humanBytes(n), humanBytes(total), n*100/total)
		}
		return fmt.Sprintf("%s %s", verb, humanBytes(n))
	}
	t.Progress = func(n, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < every && !(a.stderrTTY && n == total) {
			return
		}
		last = time.Now()
		if a.stderrTTY {
			fmt.Fprintf(a.err, "\r\033[K%s", line(n, total))
			printed = true
		} else if !last.IsZero() {
			fmt.Fprintln(a.err, line(n, total))
		}
	}
	done = func() {
		mu.Lock()
		defer mu.Unlock()
		if printed {
			fmt.Fprintln(a.err)
		}
	}
	return t, done, nil
}
