package cli

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/capydb/capydb/internal/netrules"
)

func init() { registrars = append(registrars, addNetworkCommands) }

func addNetworkCommands(root *cobra.Command) {
	g := group("network", "Who may connect to the project's database: allow-list and bans")
	g.AddCommand(networkAllowCmd(), networkBansCmd(), networkUnbanCmd())
	root.AddCommand(g)
}

func networkAllowCmd() *cobra.Command {
	var all, none bool
	var w waitOpts
	cmd := &cobra.Command{Use: "allow [CIDR...]",
		Short: "Show the allow-list, or replace it with the given IPv4/IPv6 networks (--all: anyone, --none: no one)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if all && none || (all || none) && len(args) > 0 {
				return usageError("give CIDRs, --all or --none, not several")
			}
			var req apiclient.NetworkRestrictionsRequest
			switch {
			case all:
				d := netrules.AllowAll()
				req.DBAllowedCIDRs, req.DBAllowedCIDRsV6 = d.V4, d.V6
			case none:
			default:
				for _, a := range args {
					p, err := netrules.ParseCIDR(a)
					if err != nil {
						return usageError(err.Error())
					}
					if p.Addr().Is4() {
						req.DBAllowedCIDRs = append(req.DBAllowedCIDRs, a)
					} else {
						req.DBAllowedCIDRsV6 = append(req.DBAllowedCIDRsV6, a)
					}
				}
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			if !all && !none && len(args) == 0 {
				n, err := c.GetNetworkRestrictions(a.ctx, p.ID)
				if err != nil {
					return op("read the allow-list", err)
				}
				if a.json {
					return printJSON(a.out, map[string]any{"network_restrictions": n})
				}
				fields(a.out, [][2]string{{"ipv4", strings.Join(n.DBAllowedCIDRs, " ")}, {"ipv6", strings.Join(n.DBAllowedCIDRsV6, " ")},
					{"status", n.Status}, {"applied_at", tsp(n.AppliedAt)}})
				return nil
			}
			_, job, err := c.PutNetworkRestrictions(a.ctx, p.ID, req)
			if err != nil {
				return op("replace the allow-list", err)
			}
			return a.finishJob(c, job, w, "apply the allow-list")
		}}
	cmd.Flags().BoolVar(&all, "all", false, "allow every address (the default)")
	cmd.Flags().BoolVar(&none, "none", false, "allow no address (the server's own connections keep working)")
	addWaitFlags(cmd, &w, true, 2*time.Minute)
	return cmd
}

func networkBansCmd() *cobra.Command {
	return &cobra.Command{Use: "bans", Short: "List addresses banned after repeated failed logins", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			bans, err := c.ListNetworkBans(a.ctx, p.ID)
			if err != nil {
				return op("list bans", err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"bans": bans})
			}
			rows := make([][]string, len(bans))
			for i, b := range bans {
				rows[i] = []string{b.Address, strconv.Itoa(b.Failures), ts(b.BannedAt), ts(b.ExpiresAt)}
			}
			table(a.out, []string{"ADDRESS", "FAILURES", "BANNED", "EXPIRES"}, rows)
			return nil
		}}
}

func networkUnbanCmd() *cobra.Command {
	var w waitOpts
	cmd := &cobra.Command{Use: "unban ADDRESS", Short: "Lift the ban on an address", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := netip.ParseAddr(args[0]); err != nil {
				return usageError("ADDRESS must be an IPv4 or IPv6 address")
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			job, err := c.DeleteNetworkBan(a.ctx, p.ID, args[0])
			if err != nil {
				return op("unban "+args[0], err)
			}
			return a.finishJob(c, job, w, "lift the ban")
		}}
	addWaitFlags(cmd, &w, true, 2*time.Minute)
	return cmd
}
