package cli

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/capydb/capydb/internal/auth"
)

func init() { registrars = append(registrars, addAPIKeyCommands) }

func addAPIKeyCommands(root *cobra.Command) {
	keys := group("api-keys", "Organization API keys", "api-key", "keys")
	keys.AddCommand(apiKeysListCmd(), apiKeysCreateCmd(), apiKeysRevokeCmd())
	root.AddCommand(keys)
}

// projectKeyScopes are the scopes a project-scoped key may hold.
var projectKeyScopes = []string{auth.ScopeProjectsRead, auth.ScopeProjectsWrite, auth.ScopeCredentialsRead,
	auth.ScopeBackupsRead, auth.ScopeBackupsWrite, auth.ScopeJobsRead, auth.ScopeSchemaRead}

var relExpiry = regexp.MustCompile(`^(\d+)([hdw])$`)

// parseExpiresIn reads 24h, 7d, 2w, 30d or an RFC 3339 time in the future.
func parseExpiresIn(s string, now time.Time) (time.Time, error) {
	if m := relExpiry.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
		if n <= 0 {
			return time.Time{}, usageError("--expires-in must be in the future")
		}
		return now.Add(time.Duration(n) * unit).UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageError(fmt.Sprintf("--expires-in must look like 24h, 7d, 2w, 30d or an RFC 3339 time, not %q", s))
	}
	if !t.After(now) {
		return time.Time{}, usageError("--expires-in must be in the future")
	}
	return t.UTC(), nil
}

// orgCmd is the common start of an organization command: the app, an
// authenticated client and the organization id (see app.orgClient).
func orgCmd(cmd *cobra.Command) (*app, *apiclient.Client, string, error) {
	a, err := newApp(cmd)
	if err != nil {
		return nil, nil, "", err
	}
	c, org, err := a.orgClient()
	if err != nil {
		return nil, nil, "", err
	}
	return a, c, org, nil
}

// orgClient is a client plus the organization id for organization routes.
func (a *app) orgClient() (*apiclient.Client, string, error) {
	c, err := a.client(false, false)
	if err != nil {
		return nil, "", err
	}
	org, err := a.orgID(c)
	if err != nil {
		return nil, "", err
	}
	return c, org, nil
}

func apiKeysListCmd() *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List the organization's API keys", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, org, err := orgCmd(cmd)
			if err != nil {
				return err
			}
			keys, err := c.ListAPIKeys(a.ctx, org)
			if err != nil {
				return op("list API keys", err)
			}
			return printList(a, "api_keys", keys, []string{"ID", "NAME", "PREFIX", "SCOPES", "PROJECT", "ACTIVE", "EXPIRES_AT", "LAST_USED_AT"}, func(k apiclient.APIKey) []string {
				return []string{k.ID, k.Name, k.KeyPrefix, strings.Join(k.Scopes, ","), strp(k.ProjectID), yesNo(k.IsActive),
					tsp(k.ExpiresAt), tsp(k.LastUsedAt)}
			})
		}}
}

func apiKeysCreateCmd() *cobra.Command {
	var name, expiresIn, device string
	var scopes []string
	cmd := &cobra.Command{Use: "create", Short: "Create an API key (printed once)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(name) == "" {
				return usageError("--name is required")
			}
			var list []string
			for _, s := range scopes {
				list = append(list, splitList(s)...)
			}
			if len(list) == 0 {
				return usageError("--scopes is required (comma-separated or repeated), e.g. --scopes projects:read,jobs:read")
			}
			for _, s := range list {
				if s != auth.ScopeAll && !slices.Contains(auth.AllScopes, s) {
					return usageError(fmt.Sprintf("--scopes: unknown scope %q (valid: %s, or *)", s, strings.Join(auth.AllScopes, ", ")))
				}
			}
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			req := apiclient.CreateAPIKeyRequest{Name: name, Scopes: list, DeviceName: device}
			if expiresIn != "" {
				t, err := parseExpiresIn(expiresIn, time.Now())
				if err != nil {
					return err
				}
				req.ExpiresAt = &t
			}
			if a.project != "" {
				for _, s := range list {
					if !slices.Contains(projectKeyScopes, s) {
						return usageError(fmt.Sprintf("--scopes: a project key cannot hold %q (allowed: %s)", s, strings.Join(projectKeyScopes, ", ")))
					}
				}
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			if a.project != "" {
				p, err := a.resolveProject(c, a.project, false)
				if err != nil {
					return err
				}
				req.ProjectID = p.ID
			}
			k, plain, err := c.CreateAPIKey(a.ctx, org, req)
			if err != nil {
				return op("create API key", err)
			}
			a.note("Store the API key now: it is shown only once.")
			if a.json {
				return printJSON(a.out, map[string]any{"api_key": k, "plaintext_api_key": plain})
			}
			fmt.Fprintln(a.out, plain)
			a.note("Created key %s (%s) with scopes %s.", k.ID, k.Name, strings.Join(k.Scopes, ","))
			return nil
		}}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "key name (required)")
	f.StringSliceVar(&scopes, "scopes", nil, "scopes, comma-separated or repeated (required); --project makes a project key")
	f.StringVar(&expiresIn, "expires-in", "", "lifetime: 24h, 7d, 2w, 30d or an RFC 3339 time")
	f.StringVar(&device, "device-name", "", "device label")
	return cmd
}

func apiKeysRevokeCmd() *cobra.Command {
	return &cobra.Command{Use: "revoke <key-id|name>", Short: "Revoke an API key", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, c, org, err := orgCmd(cmd)
			if err != nil {
				return err
			}
			k, err := a.resolveAPIKey(c, org, args[0])
			if err != nil {
				return err
			}
			if err := c.RevokeAPIKey(a.ctx, org, k.ID); err != nil {
				return op("revoke API key", err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"revoked": true, "key_id": k.ID})
			}
			if k.Name != "" {
				fmt.Fprintf(a.out, "Revoked %s (%s).\n", k.ID, k.Name)
			} else {
				fmt.Fprintf(a.out, "Revoked %s.\n", k.ID)
			}
			return nil
		}}
}
