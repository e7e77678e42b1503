package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/mcpserver"
	"github.com/capydb/capydb/pkg/capydb"
)

func init() { registrars = append(registrars, addMCPCommand) }

// addMCPCommand is `capydb mcp`: the MCP server over stdio, or Streamable
// HTTP on a loopback address with --http. Its key comes from --api-key,
// CAPYDB_API_KEY, the saved login or a device login (PRODUCT.md §23.4);
// stdin and stdout are the protocol, so it never prompts or prints there.
func addMCPCommand(root *cobra.Command) {
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Run the MCP server (stdio, or --http for Streamable HTTP on loopback) for AI agents",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			base := a.apiURL(false)
			key, _ := a.savedKey()
			t, err := httpTimeout()
			if err != nil {
				return err
			}
			c, err := capydb.New(base, key, capydb.WithHTTP(&http.Client{Timeout: t}), capydb.WithUserAgent("capydb-mcp/"+Version),
				capydb.WithGETRetryWaits(nil)) // API.md §1.9: the MCP server never retries
			if err != nil {
				return err
			}
			var opts mcpserver.Options
			if key == "" {
				// No key: serve at once and log in in the background; until the
				// login is approved, tools answer with the URL to open.
				if opts.LoginPending, err = a.mcpDeviceLogin(base, c); err != nil {
					return err
				}
			}
			srv := mcpserver.New(c, Version, opts)
			if h, _ := cmd.Flags().GetBool("http"); h {
				listen, _ := cmd.Flags().GetString("listen")
				return serveMCPHTTP(a.ctx, srv, listen, cmd)
			}
			return mcpserver.ServeStdio(a.ctx, srv)
		},
	}
	cmd.Flags().Bool("http", false, "serve Streamable HTTP instead of stdio")
	cmd.Flags().String("listen", "127.0.0.1:8765", "with --http: loopback address to listen on (path /mcp)")
	root.AddCommand(cmd)
}

func serveMCPHTTP(ctx context.Context, srv *mcp.Server, listen string, cmd *cobra.Command) error {
	if err := mcpserver.CheckLoopback(listen); err != nil {
		return usageError(err.Error())
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcpserver.Handler(srv))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(cmd.ErrOrStderr(), "MCP (Streamable HTTP): http://%s/mcp\n", l.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// mcpDeviceLogin starts a device login (source agent, key "MCP session") in
// the background, its messages on stderr, and returns what tools answer
// while it waits for approval. The approved key is saved like `capydb
// login` does and set on c.
func (a *app) mcpDeviceLogin(base string, c *capydb.Client) (func() string, error) {
	ac, err := a.anonClient(base)
	if err != nil {
		return nil, err
	}
	urls := &urlCatcher{w: a.err}
	a.out = urls // the approval URL must not reach stdout, the protocol
	var state atomic.Value
	state.Store("Not logged in to CapyDB yet: the login is starting; call the tool again in a few seconds.")
	go func() {
		key, err := a.deviceLogin(ac, loginOptions{name: "MCP session", noOpen: true})
		if err != nil {
			fmt.Fprintf(a.err, "capydb mcp: device login failed: %v\n", err)
			state.Store(fmt.Sprintf("CapyDB login failed (%v); set CAPYDB_API_KEY or run `capydb login` and restart the MCP server.", err))
			return
		}
		c.SetAPIKey(key)
		state.Store("")
	}()
	return func() string {
		msg := state.Load().(string)
		if u := urls.url(); msg != "" && u != "" && !strings.HasPrefix(msg, "CapyDB login failed") {
			return "Not logged in to CapyDB yet: ask the user to open " + u + " and approve this MCP session, then call the tool again."
		}
		return msg
	}, nil
}

// urlCatcher forwards to w and remembers the last http(s) line written.
type urlCatcher struct {
	w    io.Writer
	mu   sync.Mutex
	last string
}

func (u *urlCatcher) Write(p []byte) (int, error) {
	u.mu.Lock()
	for _, line := range strings.Split(string(p), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") {
			u.last = l
		}
	}
	u.mu.Unlock()
	return u.w.Write(p)
}

func (u *urlCatcher) url() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}
