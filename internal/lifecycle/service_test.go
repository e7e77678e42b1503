package lifecycle

import (
	"testing"

	"github.com/capydb/capydb/internal/secretbox"
	"github.com/capydb/capydb/internal/store"
)

// TestNewConfig: New fills the defaults and refuses a config that cannot work.
func TestNewConfig(t *testing.T) {
	box, err := secretbox.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	st := &store.Store{}
	for name, cfg := range map[string]Config{
		"no store":         {Box: box},
		"no box":           {Store: st},
		"negative workers": {Store: st, Box: box, CloneWorkers: -1},
		"negative delay":   {Store: st, Box: box, VerifyDelay: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	s, err := New(Config{Store: st, Box: box})
	if err != nil {
		t.Fatal(err)
	}
	if s.Log == nil || s.importGuard() == nil || s.cloneWorkers() < 2 {
		t.Fatalf("defaults not applied: log %v guard %v workers %d", s.Log, s.importGuard(), s.cloneWorkers())
	}
	if s, _ := New(Config{Store: st, Box: box, CloneWorkers: 3}); s.cloneWorkers() != 3 {
		t.Fatalf("CloneWorkers 3 became %d", s.cloneWorkers())
	}
}
