package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/fleet"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/server"
	"github.com/capydb/capydb/internal/store"
)

func init() { registrars = append(registrars, addNodeCommand) }

// addNodeCommand is `capydb node`: the embedded cluster of a data-plane host,
// run for a control plane elsewhere (docs/fleet.md).
func addNodeCommand(root *cobra.Command) {
	var cfg server.Config
	var clockFile string
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a data-plane node: this host's Postgres + pgBouncer and the jobs of its cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			explicit, err := applyEnv(cmd)
			if err != nil {
				return err
			}
			cfg.DirectPortExplicit, cfg.PooledPortExplicit = explicit["direct-port"], explicit["pooled-port"]
			cfg.SessionPortExplicit = explicit["session-port"]
			cfg.Node, cfg.EmbeddedCluster, cfg.Version = true, true, Version
			cfg.Components = []string{"worker"}
			cfg.Listen = "127.0.0.1:0" // unused: a node serves no API
			if clockFile != "" {
				return usageError("--unsafe-clock-file is not supported by capydb node")
			}
			log, err := newLogger(cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return err
			}
			return runNode(cmd.Context(), cfg, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DatabaseURL, "database-url", "", "the node's control-database URL, as `capydb admin node add` printed it (required)")
	f.StringVar(&cfg.DataDir, "data-dir", server.DefaultDataDir(), "data directory (cluster, TLS); the control plane's secret key goes into <data-dir>/secret.key or CAPYDB_SECRET_KEY")
	f.IntVar(&cfg.DirectPort, "direct-port", 5432, "direct Postgres port")
	f.IntVar(&cfg.PooledPort, "pooled-port", 6432, "pgBouncer port (transaction pooling)")
	f.IntVar(&cfg.SessionPort, "session-port", 6433, "session-mode pgBouncer port")
	f.StringVar(&cfg.PublicHost, "public-host", "", "host clients reach this node at: written into connection URLs and named by its server certificate (required)")
	f.IntVar(&cfg.Workers, "workers", 10, "jobs run concurrently by this node")
	f.BoolVar(&cfg.AllowOldPgBouncer, "allow-old-pgbouncer", false, "run with a pgBouncer older than 1.21")
	f.BoolVar(&cfg.AllowPlaintext, "allow-plaintext", false, "let projects be switched to accept clients without TLS")
	f.StringVar(&cfg.BackupURL, "backup-url", "", "blob store of backups, exports and uploads: the control plane's (default file://<data-dir>/backups)")
	f.DurationVar(&cfg.LogRetention, "log-retention", 7*24*time.Hour, "how long collected postgres log lines are kept")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", 5*time.Second, "how often the node reports that it is alive")
	f.StringVar(&cfg.LogFormat, "log-format", "auto", "auto, json or text")
	f.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&cfg.Fast, "unsafe-no-fsync", false, "turn off fsync (tests only)")
	_ = f.MarkHidden("unsafe-no-fsync")
	f.StringVar(&clockFile, "unsafe-clock-file", "", "unsupported")
	_ = f.MarkHidden("unsafe-clock-file")
	root.AddCommand(cmd)
}

func runNode(parent context.Context, cfg server.Config, log *slog.Logger) error {
	if cfg.PublicHost == "" {
		return usageError("--public-host is required: the name or address clients reach this node at")
	}
	if os.Getenv("CAPYDB_SECRET_KEY") == "" {
		if _, err := os.Stat(cfg.DataDir + "/secret.key"); err != nil {
			return fmt.Errorf("a node decrypts its projects' passwords with the control plane's secret key: " +
				"set CAPYDB_SECRET_KEY or copy the control plane's secret.key into --data-dir")
		}
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	c := srv.Cluster()
	fmt.Fprintf(os.Stdout, "\nCapyDB node is running.\n  Cluster:   %s\n  Postgres:  %s:%d (direct), %d (pooled), %d (session)\n\n",
		srv.ClusterID(), cfg.PublicHost, c.DirectPort(), c.PooledPort(), c.SessionPort())
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-srv.Errors():
		log.Error("node failed", "error", err)
	}
	srv.Stop(context.Background())
	return err
}

// addFleetAdmin adds `capydb admin node …` and `capydb admin cluster …`,
// which work on the control database directly (like create-key).
func addFleetAdmin(admin *cobra.Command) {
	var dataDir, databaseURL string
	open := func(cmd *cobra.Command) (*store.Store, string, func(), error) {
		if _, err := applyEnv(cmd, "data-dir", "database-url"); err != nil {
			return nil, "", nil, err
		}
		dsn, err := server.ControlDSN(databaseURL, dataDir)
		if err != nil {
			return nil, "", nil, err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
		st, err := store.Open(ctx, dsn, 2)
		cancel()
		if err != nil {
			return nil, "", nil, err
		}
		return st, dsn, st.Close, nil
	}
	dbFlags := func(c *cobra.Command) {
		c.Flags().StringVar(&dataDir, "data-dir", server.DefaultDataDir(), "data directory of the server")
		c.Flags().StringVar(&databaseURL, "database-url", "", "control database URL")
	}

	node := &cobra.Command{Use: "node", Short: "Data-plane nodes: credentials for `capydb node`"}
	var region, controlHost string
	var maxProjects int
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Register a cluster run by a node and print the node's control-database URL (shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, dsn, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			n, err := fleet.AddNode(cmd.Context(), st, args[0], region, maxProjects)
			if err != nil {
				return err
			}
			url, err := fleet.NodeDSN(dsn, controlHost, n)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "registered cluster %s (%s) in region %s; start the node with --database-url set to this URL (shown only once):\n",
				n.Cluster.ID, n.Cluster.Name, region)
			fmt.Fprintln(cmd.OutOrStdout(), url)
			return nil
		},
	}
	dbFlags(add)
	add.Flags().StringVar(&region, "region", "local", "region of the node's cluster")
	add.Flags().StringVar(&controlHost, "control-host", "", "host[:port] the node reaches the control database at (default: as in the control database URL)")
	add.Flags().IntVar(&maxProjects, "max-projects", 0, "most projects placed on the cluster (0 = no cap)")
	// onCluster is a command on one cluster named by id or name: it opens
	// the control database, resolves the cluster and runs fn.
	onCluster := func(use, short string, fn func(cmd *cobra.Command, st *store.Store, c *store.Cluster) error) *cobra.Command {
		c := &cobra.Command{
			Use: use + " CLUSTER", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				st, _, done, err := open(cmd)
				if err != nil {
					return err
				}
				defer done()
				c, err := store.GetClusterByRef(cmd.Context(), st.Pool, args[0])
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("cluster %q not found", args[0])
				} else if err != nil {
					return err
				}
				return fn(cmd, st, c)
			},
		}
		dbFlags(c)
		return c
	}
	revoke := onCluster("revoke", "Take a node's control-database login away and end its sessions",
		func(cmd *cobra.Command, st *store.Store, c *store.Cluster) error {
			if err := fleet.RevokeNode(cmd.Context(), st, c); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "revoked the node of cluster %s\n", c.ID)
			return nil
		})
	node.AddCommand(add, revoke)

	cluster := &cobra.Command{Use: "cluster", Short: "The cluster registry: list, cordon, uncordon, drain"}
	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "Every cluster with its state, load and last heartbeat",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, _, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			clusters, err := store.ListClusters(cmd.Context(), st.Pool)
			if err != nil {
				return err
			}
			loads, err := store.ClusterLoads(cmd.Context(), st.Pool)
			if err != nil {
				return err
			}
			return printClusters(cmd, output, clusters, loads)
		},
	}
	dbFlags(list)
	list.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	setState := func(use, short, state string) *cobra.Command {
		return onCluster(use, short, func(cmd *cobra.Command, st *store.Store, c *store.Cluster) error {
			if err := store.SetClusterState(cmd.Context(), st.Pool, c.ID, state); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "cluster %s (%s) is now %s\n", c.ID, c.Name, state)
			return nil
		})
	}
	cluster.AddCommand(list,
		setState("cordon", "Keep new projects off a cluster; its projects keep running", store.ClusterCordoned),
		setState("uncordon", "Open a cordoned or draining cluster for new projects again", store.ClusterActive))
	drain := onCluster("drain", "Close a cluster to new projects and move every project off it (one project.move job each)",
		func(cmd *cobra.Command, st *store.Store, c *store.Cluster) error {
			if err := store.SetClusterState(cmd.Context(), st.Pool, c.ID, store.ClusterDraining); err != nil {
				return err
			}
			moved, skipped, err := lifecycle.Drain(cmd.Context(), st, c, lifecycle.Actor{Kind: "operator"})
			for _, s := range skipped {
				fmt.Fprintln(cmd.ErrOrStderr(), "not moved:", s)
			}
			if err != nil {
				return err
			}
			for _, j := range moved {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", *j.ProjectID, j.ID)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "cluster %s is draining; %d moves queued, %d projects not moved\n", c.ID, len(moved), len(skipped))
			return nil
		})
	cluster.AddCommand(drain)
	addStandbyCommands(cluster, open, dbFlags, onCluster)

	project := &cobra.Command{Use: "project", Short: "Operator actions on one project"}
	var to string
	move := &cobra.Command{
		Use:   "move PROJECT --to CLUSTER",
		Short: "Move a project to another cluster (project.move: same credentials, URLs name the new host)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			c, err := store.GetClusterByRef(cmd.Context(), st.Pool, to)
			if errors.Is(err, store.ErrNotFound) {
				return usageError(fmt.Sprintf("--to: cluster %q not found", to))
			} else if err != nil {
				return err
			}
			j, err := lifecycle.EnqueueMove(cmd.Context(), st, args[0], c.ID, lifecycle.Actor{Kind: "operator"})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), j.ID)
			return nil
		},
	}
	dbFlags(move)
	move.Flags().StringVar(&to, "to", "", "target cluster id or name (required)")
	project.AddCommand(move)
	admin.AddCommand(node, cluster, project)
}

func printClusters(cmd *cobra.Command, output string, clusters []*store.Cluster, loads map[string]store.ClusterLoad) error {
	now := time.Now()
	if output == "json" {
		out := []map[string]any{}
		for _, c := range clusters {
			out = append(out, map[string]any{"id": c.ID, "name": c.Name, "region": c.Region, "public_host": c.PublicHost,
				"postgres_version": c.PostgresVersion, "state": store.EffectiveState(c, now), "projects": loads[c.ID].Projects,
				"previews": loads[c.ID].Previews, "max_projects": c.MaxProjects, "last_heartbeat_at": c.LastHeartbeatAt,
				"replica_of": c.ReplicaOf, "replication": c.Replication})
		}
		return printJSON(cmd.OutOrStdout(), map[string]any{"clusters": out})
	}
	if output != "table" {
		return usageError("-o must be table or json")
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tREGION\tHOST\tPG\tSTATE\tPROJECTS\tHEARTBEAT\tSTANDBY OF")
	for _, c := range clusters {
		hb := "-"
		if c.LastHeartbeatAt != nil {
			hb = strconv.Itoa(int(now.Sub(*c.LastHeartbeatAt).Seconds())) + "s ago"
		}
		standbyOf := "-"
		if c.ReplicaOf != "" {
			standbyOf = c.ReplicaOf
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.ID, c.Name, c.Region, c.PublicHost, c.PostgresVersion,
			store.EffectiveState(c, now), loads[c.ID].Projects, hb, standbyOf)
	}
	return w.Flush()
}
