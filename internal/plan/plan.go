// Package plan holds the per-project limits of each organization plan.
package plan

import "fmt"

// Limits are what a plan gives every project of an organization.
type Limits struct {
	Name                   string
	MaxConnections         int
	MaxPreviews            int // -1 = unlimited
	StorageLimitBytes      int64
	StatementTimeout       string // Postgres duration syntax; "0" = none
	IdleTransactionTimeout string
}

// Defaults are the operator-configurable plan limits a fresh server uses.
var Defaults = map[string]Limits{
	"vibe":     {Name: "vibe", MaxConnections: 15, MaxPreviews: 1, StorageLimitBytes: 5 << 30, StatementTimeout: "0", IdleTransactionTimeout: "60s"},
	"ship":     {Name: "ship", MaxConnections: 30, MaxPreviews: 5, StorageLimitBytes: 25 << 30, StatementTimeout: "0", IdleTransactionTimeout: "90s"},
	"business": {Name: "business", MaxConnections: 60, MaxPreviews: -1, StorageLimitBytes: 100 << 30, StatementTimeout: "0", IdleTransactionTimeout: "120s"},
}

// Lookup returns the limits of a plan by name.
func Lookup(name string) (Limits, error) {
	l, ok := Defaults[name]
	if !ok {
		return Limits{}, fmt.Errorf("unknown plan %q", name)
	}
	return l, nil
}
