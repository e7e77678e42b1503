package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/mcpserver"
	"github.com/capydb/capydb/pkg/capydb"
)

func init() { registrars = append(registrars, addMCPCommand) }

// addMCPCommand is `capydb mcp`: the MCP server over stdio, or Streamable
// HTTP on a loopback address with --http. Its key comes from --api-key,
// CAPYDB_API_KEY or the saved login; stdin is the protocol, so it never prompts.
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
			if key == "" {
				return noCredentials(base, "the MCP server does not prompt")
			}
			t, err := httpTimeout()
			if err != nil {
				return err
			}
			c, err := capydb.New(base, key, capydb.WithHTTP(&http.Client{Timeout: t}), capydb.WithUserAgent("capydb-mcp/"+Version),
				capydb.WithGETRetryWaits(nil)) // API.md §1.9: the MCP server never retries
			if err != nil {
				return err
			}
			srv := mcpserver.New(c, Version)
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
