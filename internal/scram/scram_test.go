package scram

import "testing"

func TestMatches(t *testing.T) {
	v, err := Verifier("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !Matches(v, "correct horse") {
		t.Fatal("verifier does not match its own password")
	}
	for _, bad := range []string{"wrong", "", "correct horse "} {
		if Matches(v, bad) {
			t.Fatalf("verifier matches %q", bad)
		}
	}
	for _, broken := range []string{"", "md5abc", "SCRAM-SHA-256$x:y$z", "SCRAM-SHA-256$4096:!!$a:b"} {
		if Matches(broken, "correct horse") {
			t.Fatalf("malformed verifier %q matched", broken)
		}
	}
}
