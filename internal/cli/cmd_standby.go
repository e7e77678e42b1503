package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/fleet"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
)

// addStandbyCommands adds `capydb admin cluster add-replica|remove-replica|
// failover` (docs/fleet.md, "Standby clusters" and "Failover").
func addStandbyCommands(cluster *cobra.Command,
	open func(*cobra.Command) (*store.Store, string, func(), error),
	dbFlags func(*cobra.Command),
	onCluster func(use, short string, fn func(*cobra.Command, *store.Store, *store.Cluster) error) *cobra.Command) {
	var controlHost string
	addReplica := onCluster("add-replica", "Register a standby cluster of CLUSTER run by its own node; prints the node's control-database URL (shown once)",
		func(cmd *cobra.Command, st *store.Store, primary *store.Cluster) error {
			name, _ := cmd.Flags().GetString("name")
			if name == "" {
				return usageError("--name is required: the standby cluster's name")
			}
			_, dsn, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			n, err := fleet.AddReplica(cmd.Context(), st, primary, name)
			if err != nil {
				return err
			}
			url, err := fleet.NodeDSN(dsn, controlHost, n)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "registered standby cluster %s (%s) of %s; start its node with --database-url set to this URL (shown only once):\n",
				n.Cluster.ID, n.Cluster.Name, primary.Name)
			fmt.Fprintln(cmd.OutOrStdout(), url)
			return nil
		})
	addReplica.Use = "add-replica PRIMARY --name NAME"
	addReplica.Flags().String("name", "", "name of the standby cluster (required)")
	addReplica.Flags().StringVar(&controlHost, "control-host", "", "host[:port] the standby's node reaches the control database at")

	removeReplica := onCluster("remove-replica", "Remove a standby cluster: detach its read replicas, revoke its node, drop its slot on the primary",
		func(cmd *cobra.Command, st *store.Store, c *store.Cluster) error {
			detached, err := fleet.RemoveReplica(cmd.Context(), st, c)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "removed standby cluster %s (%s); %d read replicas detached; the primary's node drops its slot at its next heartbeat\n",
				c.ID, c.Name, detached)
			return nil
		})

	var to string
	var force bool
	var wait time.Duration
	failover := onCluster("failover", "Promote a standby cluster in place of CLUSTER: fence CLUSTER, promote --to, move every project to it",
		func(cmd *cobra.Command, st *store.Store, primary *store.Cluster) error {
			if to == "" {
				return usageError("--to is required: the standby cluster to promote")
			}
			standby, err := store.GetClusterByRef(cmd.Context(), st.Pool, to)
			if errors.Is(err, store.ErrNotFound) {
				return usageError(fmt.Sprintf("--to: cluster %q not found", to))
			} else if err != nil {
				return err
			}
			res, err := lifecycle.Failover(cmd.Context(), st, primary, standby, lifecycle.FailoverOptions{Force: force, Wait: wait,
				Progress: func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), msg) }})
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"from_cluster_id": res.From, "to_cluster_id": res.To,
				"clean_stop": res.CleanStop, "projects": res.Projects, "promote_ms": res.PromoteMS})
		})
	failover.Use = "failover PRIMARY --to STANDBY"
	failover.Flags().StringVar(&to, "to", "", "the standby cluster to promote (id or name; required)")
	failover.Flags().BoolVar(&force, "force", false, "promote without waiting for the primary's node to stop or go offline (writes it still takes are lost)")
	failover.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long each step may wait")
	cluster.AddCommand(addReplica, removeReplica, failover)
}
