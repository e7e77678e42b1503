package dataplane

import "testing"

func TestFollowEntry(t *testing.T) {
	for line, want := range map[string]bool{
		"215; 2615 16385 SCHEMA - capydb_follow capydb_admin":               true,
		"216; 1255 16386 FUNCTION capydb_follow guard() capydb_admin":       true,
		"3456; 3466 16387 EVENT TRIGGER - capydb_follow_guard capydb_admin": true,
		"217; 1259 16390 TABLE public accounts app":                         false,
		"218; 2615 16391 SCHEMA - capydb_followers app":                     false,
		"219; 1259 16392 TABLE capydb_followers t app":                      false,
	} {
		if got := followEntry.MatchString(line); got != want {
			t.Errorf("%q: %v, want %v", line, got, want)
		}
	}
}
