package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

// errorDoc is a failed command's JSON document on stdout with -o json.
type errorDoc struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
	Status   int    `json:"status,omitempty"` // the HTTP status, for an answer from the server
	Server   string `json:"server,omitempty"` // the API base URL that answered or could not be reached
}

// atServer marks an error the CLI made up about an exchange with a server
// (a device-login verdict, say) so that it too names that server.
type atServer struct {
	server string
	err    error
}

func (e *atServer) Error() string { return e.err.Error() }
func (e *atServer) Unwrap() error { return e.err }

// serverOf is the server an error came from: an API or network error's, or
// an atServer mark's.
func serverOf(err error) string {
	if s := apiclient.ServerOf(err); s != "" {
		return s
	}
	var at *atServer
	if errors.As(err, &at) {
		return at.server
	}
	return ""
}

// errorMessage is err's text, naming the server it came from when the
// message does not already (a network error says "cannot reach <url>").
func errorMessage(err error) string {
	msg := err.Error()
	if s := serverOf(err); s != "" && !strings.Contains(msg, s) {
		msg += " (server " + s + ")"
	}
	return msg
}

// reportError prints a failed command's error on stderr and, in JSON mode,
// as {"error", "exit_code", "status"?, "server"?} on stdout, unless the
// command already printed its document there (stdout carries exactly one).
func reportError(cmd *cobra.Command, err error, stdout *trackingWriter, stderr io.Writer) int {
	code := exitCode(err)
	msg := errorMessage(err)
	fmt.Fprintln(stderr, "error:", msg)
	if jsonMode(cmd) && !stdout.wrote {
		_ = printJSON(stdout, errorDoc{Error: msg, ExitCode: code, Status: apiclient.StatusOf(err), Server: serverOf(err)})
	}
	return code
}

// jsonMode reports whether the command ran with -o json (on export and
// export download -o is bound to --output-format, since --output is a file).
func jsonMode(cmd *cobra.Command) bool {
	if cmd == nil {
		return false
	}
	for _, name := range []string{"output-format", "output"} {
		if f := cmd.Flags().Lookup(name); f != nil {
			return f.Value.String() == "json"
		}
	}
	return false
}

// trackingWriter remembers whether anything was written to stdout.
type trackingWriter struct {
	w     io.Writer
	wrote bool
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		t.wrote = true
	}
	return t.w.Write(p)
}

// unwrapOut is the stream under a trackingWriter, for child processes that
// must inherit the terminal itself.
func unwrapOut(w io.Writer) io.Writer {
	if t, ok := w.(*trackingWriter); ok {
		t.wrote = true
		return t.w
	}
	return w
}
