package cli

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

func init() { registrars = append(registrars, addWebhookCommands) }

// webhookEvents are the event types an endpoint may subscribe to (API.md §5).
var webhookEvents = []string{"job.completed", "job.failed", "project.ready", "project.deleted", "backup.completed",
	"preview.ready", "preview.deleted", "import.completed", "restore.completed", "credentials.rotated",
	"alert.triggered", "alert.resolved"}

func addWebhookCommands(root *cobra.Command) {
	wh := group("webhooks", "Webhook endpoints that receive CapyDB events", "webhook")
	wh.AddCommand(webhooksListCmd(), webhooksCreateCmd(), webhooksDeleteCmd(), webhooksRotateCmd(),
		webhooksDeliveriesCmd(), webhooksTestCmd(), webhooksRedeliverCmd())
	root.AddCommand(wh)
}

// orgCommand builds a command that runs against the caller's organization.
func orgCommand(use, short string, args cobra.PositionalArgs, run func(a *app, c *apiclient.Client, org string, args []string) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, argv []string) error {
			a, c, org, err := orgCmd(cmd)
			if err != nil {
				return err
			}
			return run(a, c, org, argv)
		}}
}

func webhooksListCmd() *cobra.Command {
	return orgCommand("list", "List webhook endpoints", exactArgs(0), func(a *app, c *apiclient.Client, org string, _ []string) error {
		list, err := c.ListWebhooks(a.ctx, org)
		if err != nil {
			return op("list webhook endpoints", err)
		}
		return printList(a, "webhook_endpoints", list, []string{"ID", "URL", "EVENTS", "ACTIVE", "CREATED_AT"}, func(e apiclient.WebhookEndpoint) []string {
			events := strings.Join(e.EventTypes, ",")
			if events == "" {
				events = "all"
			}
			return []string{e.ID, a.shownURL(e.URL), events, yesNo(e.IsActive), ts(e.CreatedAt)}
		})
	})
}

func (a *app) printEndpointSecret(e *apiclient.WebhookEndpoint, secret string) error {
	a.note("Store the signing secret now: it is shown only once.")
	if a.json {
		return printJSON(a.out, map[string]any{"webhook_endpoint": e, "plaintext_secret": secret})
	}
	fmt.Fprintln(a.out, secret)
	a.note("Endpoint %s -> %s", e.ID, a.shownURL(e.URL))
	return nil
}

func webhooksCreateCmd() *cobra.Command {
	var u, description string
	var events []string
	cmd := orgCommand("create", "Create a webhook endpoint (prints its signing secret once)", exactArgs(0),
		func(a *app, c *apiclient.Client, org string, _ []string) error {
			e, secret, err := c.CreateWebhook(a.ctx, org, apiclient.CreateWebhookRequest{URL: u, Description: description, EventTypes: events})
			if err != nil {
				return op("create webhook endpoint", err)
			}
			return a.printEndpointSecret(e, secret)
		})
	inner := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if u == "" {
			return usageError("--url is required")
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return usageError("--url must be an absolute https:// URL")
		}
		for _, ev := range events {
			if !slices.Contains(webhookEvents, ev) {
				return usageError(fmt.Sprintf("--event: unknown event type %q (valid: %s)", ev, strings.Join(webhookEvents, ", ")))
			}
		}
		return inner(cmd, args)
	}
	f := cmd.Flags()
	f.StringVar(&u, "url", "", "receiver URL, https:// (required)")
	f.StringArrayVar(&events, "event", nil, "event type to send (repeatable; all events when omitted)")
	f.StringVar(&description, "description", "", "description")
	return cmd
}

func webhooksDeleteCmd() *cobra.Command {
	return orgCommand("delete <endpoint-id>", "Delete a webhook endpoint", exactArgs(1), func(a *app, c *apiclient.Client, org string, args []string) error {
		if err := c.DeleteWebhook(a.ctx, org, args[0]); err != nil {
			return op("delete webhook endpoint", err)
		}
		if a.json {
			return printJSON(a.out, map[string]any{"deleted": true, "endpoint_id": args[0]})
		}
		fmt.Fprintf(a.out, "Deleted %s.\n", args[0])
		return nil
	})
}

func webhooksRotateCmd() *cobra.Command {
	return orgCommand("rotate-secret <endpoint-id>", "Replace an endpoint's signing secret (prints the new one once)", exactArgs(1),
		func(a *app, c *apiclient.Client, org string, args []string) error {
			e, secret, err := c.RotateWebhookSecret(a.ctx, org, args[0])
			if err != nil {
				return op("rotate webhook secret", err)
			}
			return a.printEndpointSecret(e, secret)
		})
}

func webhooksDeliveriesCmd() *cobra.Command {
	var limit int
	cmd := orgCommand("deliveries <endpoint-id>", "List an endpoint's deliveries, newest first", exactArgs(1),
		func(a *app, c *apiclient.Client, org string, args []string) error {
			list, err := c.ListDeliveries(a.ctx, org, args[0], limit)
			if err != nil {
				return op("list webhook deliveries", err)
			}
			return printList(a, "deliveries", list, []string{"ID", "EVENT", "STATE", "ATTEMPTS", "STATUS", "CREATED_AT", "LAST_ERROR"}, func(d apiclient.WebhookDelivery) []string {
				status := ""
				if d.ResponseStatus != nil && *d.ResponseStatus != 0 {
					status = strconv.Itoa(*d.ResponseStatus)
				}
				return []string{d.ID, d.EventType, d.State, fmt.Sprintf("%d/%d", d.Attempts, d.MaxAttempts), status,
					ts(d.CreatedAt), strp(d.LastError)}
			})
		})
	inner := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if limit < 0 || limit > 100 {
			return usageError("--limit must be between 1 and 100")
		}
		return inner(cmd, args)
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "how many deliveries (default 25, max 100)")
	return cmd
}

func (a *app) printDelivery(d *apiclient.WebhookDelivery) error {
	if a.json {
		return printJSON(a.out, map[string]any{"delivery": d})
	}
	fields(a.out, [][2]string{{"delivery_id", d.ID}, {"event", d.EventType}, {"state", d.State},
		{"attempts", fmt.Sprintf("%d/%d", d.Attempts, d.MaxAttempts)}})
	return nil
}

func webhooksTestCmd() *cobra.Command {
	return orgCommand("test <endpoint-id>", "Send a webhook.test delivery", exactArgs(1), func(a *app, c *apiclient.Client, org string, args []string) error {
		d, err := c.TestWebhook(a.ctx, org, args[0])
		if err != nil {
			return op("test webhook endpoint", err)
		}
		return a.printDelivery(d)
	})
}

func webhooksRedeliverCmd() *cobra.Command {
	return orgCommand("redeliver <endpoint-id> <delivery-id>", "Send a delivery's event again", exactArgs(2),
		func(a *app, c *apiclient.Client, org string, args []string) error {
			d, err := c.RedeliverWebhook(a.ctx, org, args[0], args[1])
			if err != nil {
				return op("redeliver webhook", err)
			}
			return a.printDelivery(d)
		})
}
