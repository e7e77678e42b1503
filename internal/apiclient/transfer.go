package apiclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultTransferTimeout bounds a whole upload or download unless
// CAPYDB_HTTP_TIMEOUT says otherwise (CLI.md §6).
const DefaultTransferTimeout = 30 * time.Minute

// Transfer moves files to and from signed URLs. Signed URLs carry their own
// grant, so requests have only the User-Agent: never Authorization.
type Transfer struct {
	UserAgent string
	HTTP      *http.Client
	// Progress, when set, is called with the bytes moved so far and the
	// total (-1 when unknown) as the transfer advances.
	Progress func(done, total int64)
}

// NewTransfer returns a Transfer whose whole request may take timeout
// (DefaultTransferTimeout when <= 0).
func NewTransfer(version string, timeout time.Duration) *Transfer {
	if timeout <= 0 {
		timeout = DefaultTransferTimeout
	}
	return &Transfer{UserAgent: UserAgent(version), HTTP: &http.Client{Timeout: timeout}}
}

// progress counts the bytes a transfer moved and reports them to fn.
type progress struct {
	n     int64
	total int64
	fn    func(done, total int64)
}

func (p *progress) add(n int, report bool) {
	p.n += int64(n)
	if p.fn != nil && report {
		p.fn(p.n, p.total)
	}
}

type countingWriter struct {
	w io.Writer
	progress
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.add(n, true)
	return n, err
}

type countingReader struct {
	r io.Reader
	progress
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.add(n, n > 0)
	return n, err
}

// Download GETs url into w and returns the number of bytes written. Any 2xx
// counts; a body shorter than its Content-Length is an error.
func (t *Transfer) Download(ctx context.Context, url string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("invalid download URL: %w", err)
	}
	req.Header.Set("User-Agent", t.UserAgent)
	resp, err := t.HTTP.Do(req)
	if err != nil {
		return 0, &NetworkError{Base: req.URL.Host, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, apiError(resp.StatusCode, body)
	}
	cw := &countingWriter{w: w, progress: progress{total: resp.ContentLength, fn: t.Progress}}
	n, err := io.Copy(cw, resp.Body)
	if err != nil {
		return n, &NetworkError{Base: req.URL.Host, Err: fmt.Errorf("while downloading: %w", err)}
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("download ended after %d of %d bytes", n, resp.ContentLength)
	}
	return n, nil
}

// Upload PUTs size bytes from r to url as application/octet-stream with an
// exact Content-Length. Any 2xx counts.
func (t *Transfer) Upload(ctx context.Context, url string, r io.Reader, size int64) error {
	body := &countingReader{r: r, progress: progress{total: size, fn: t.Progress}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, body)
	if err != nil {
		return fmt.Errorf("invalid upload URL: %w", err)
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("User-Agent", t.UserAgent)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := t.HTTP.Do(req)
	if err != nil {
		return &NetworkError{Base: req.URL.Host, Err: err}
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return apiError(resp.StatusCode, respBody)
	}
	return nil
}
