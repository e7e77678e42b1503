package cli

import (
	"net/url"
	"strings"
)

// Human output never shows a database password unless --show-secrets is
// given: terminals are shared, scrolled back, screenshotted and pasted into
// issues. JSON output follows CLI.md §8 instead: connection strings appear
// unmasked only where the command exists to hand them out
// (connection-string, and preview create's connections object); env files
// always get the real values.

// maskedPassword replaces a password in human output.
const maskedPassword = "****"

// maskURL hides the password of a URL ("postgres://u:****@host/db"); a URL
// without one, or text that is not a URL, is returned unchanged.
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); !ok {
		return raw
	}
	// Rebuild from the text: url.UserPassword would re-encode the rest.
	scheme := strings.Index(raw, "://")
	if scheme < 0 {
		return raw
	}
	rest := raw[scheme+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	colon := strings.Index(rest[:end], ":")
	if at < 0 || colon < 0 || colon > at {
		return raw
	}
	return raw[:scheme+3] + rest[:colon+1] + maskedPassword + rest[at:]
}

// shownURL is a URL as human output shows it: masked unless --show-secrets.
func (a *app) shownURL(u string) string {
	if a.showSecrets {
		return u
	}
	return maskURL(u)
}
