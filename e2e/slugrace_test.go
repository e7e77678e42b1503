package e2e

import (
	"sync"
	"testing"
)

// TestConcurrentCreatesDeriveDistinctSlugs: creates of one organization
// lock by slug root only (store.LockOrgCreates), so a burst of differently
// named projects does not queue on one lock; names whose derived slugs can
// collide ("race", "race 2" → race-2) still share a lock, and every create
// gets its own slug.
func TestConcurrentCreatesDeriveDistinctSlugs(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)
	names := []string{"race", "race", "race", "race 2", "race 2", "race 2", "race 2-2", "other", "other"}
	slugs := make([]string, len(names))
	statuses := make([]int, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() {
			r := s.call("POST", "/v1/projects", s.key, map[string]any{"name": n, "environment": "non_production"})
			statuses[i] = r.Status
			slugs[i], _ = r.get("project", "slug").(string)
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, sl := range slugs {
		if statuses[i] != 202 || sl == "" {
			t.Fatalf("create %q: status %d, slug %q", names[i], statuses[i], sl)
		}
		if seen[sl] {
			t.Fatalf("slug %s given twice: %v", sl, slugs)
		}
		seen[sl] = true
	}
	t.Logf("slugs: %v", slugs)
}
