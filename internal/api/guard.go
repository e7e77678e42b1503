package api

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// checkRequestURL refuses, before routing, what would otherwise reach a
// handler or the router badly: a NUL in the path or query (Postgres text
// cannot hold it, so it surfaced as a 500), and a path that is not clean
// (ServeMux would answer an HTML redirect instead of an error).
func checkRequestURL(r *http.Request) string {
	p := r.URL.Path
	if strings.ContainsRune(p, 0) {
		return "the request path must not contain a NUL character (%00)"
	}
	for name, values := range r.URL.Query() {
		for _, v := range values {
			if strings.ContainsRune(name, 0) || strings.ContainsRune(v, 0) {
				return fmt.Sprintf("query parameter %q must not contain a NUL character (%%00)", strings.ReplaceAll(name, "\x00", ""))
			}
		}
	}
	if strings.HasPrefix(p, "/") {
		trimmed := p
		if len(trimmed) > 1 {
			trimmed = strings.TrimRight(trimmed, "/")
			if trimmed == "" {
				trimmed = "/"
			}
		}
		if path.Clean(trimmed) != trimmed {
			return `the request path must not contain empty, "." or ".." segments`
		}
	}
	return ""
}

// redactPath hides the credential of signed object routes in logs: the token
// in the path is all a downloader needs.
func redactPath(p string) string {
	mount, rest := "", p
	if r, ok := strings.CutPrefix(p, "/api/capydb"); ok {
		mount, rest = "/api/capydb", r
	}
	for _, prefix := range []string{"/v1/object-downloads/", "/v1/object-uploads/"} {
		if strings.HasPrefix(rest, prefix) && len(rest) > len(prefix) {
			return mount + prefix + "REDACTED"
		}
	}
	return p
}

// JSONErrorListener wraps the API's listener so that the few answers
// net/http writes itself, before any handler runs (a malformed request line
// such as an invalid %zz escape, a bad header, headers too large), are JSON
// errors like every other answer instead of text/plain.
func JSONErrorListener(ln net.Listener, version string) net.Listener {
	return &jsonErrorListener{Listener: ln, version: version}
}

type jsonErrorListener struct {
	net.Listener
	version string
}

func (l *jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorConn{Conn: c, version: l.version}, nil
}

type jsonErrorConn struct {
	net.Conn
	version string
}

// netHTTPErrorHeaders is how net/http's own error answers continue after the
// status line (net/http/server.go, conn.serve). Handler answers never look
// like this: their headers are sorted, so Connection never follows Content-Type.
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *jsonErrorConn) Write(p []byte) (int, error) {
	if !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) {
		return c.Conn.Write(p)
	}
	i := bytes.Index(p, []byte(netHTTPErrorHeaders))
	if i < 0 || bytes.IndexByte(p[:i], '\n') >= 0 {
		return c.Conn.Write(p)
	}
	status := string(p[len("HTTP/1.1 "):i]) // "400 Bad Request[: detail]"
	code, reason, _ := strings.Cut(status, " ")
	n, err := strconv.Atoi(code)
	if err != nil || len(code) != 3 {
		return c.Conn.Write(p)
	}
	msg := "malformed HTTP request: invalid request line, URL escape or header"
	if _, detail, ok := strings.Cut(reason, ": "); ok && detail != "" {
		msg = "malformed HTTP request: " + detail
	} else if code == "501" {
		msg = "unsupported transfer encoding"
	} else if code != "400" {
		msg = strings.ToLower(reason)
	}
	body := fmt.Sprintf("{\"error\":%q}\n", msg)
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %s %s\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n", code, http.StatusText(n), len(body))
	fmt.Fprintf(&b, "X-CapyDB-Version: %s\r\nConnection: close\r\n\r\n%s", c.version, body)
	if _, err := c.Conn.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadFrom keeps the underlying connection's sendfile path for downloads.
func (c *jsonErrorConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}

// CloseWrite lets net/http half-close as it does on a bare TCP connection.
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
