package dataplane

import "testing"

func TestVerifierMatches(t *testing.T) {
	v, err := SCRAMVerifier("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !VerifierMatches(v, "correct horse") {
		t.Fatal("verifier does not match its own password")
	}
	for _, bad := range []string{"wrong", "", "correct horse "} {
		if VerifierMatches(v, bad) {
			t.Fatalf("verifier matches %q", bad)
		}
	}
	for _, broken := range []string{"", "md5abc", "SCRAM-SHA-256$x:y$z", "SCRAM-SHA-256$4096:!!$a:b"} {
		if VerifierMatches(broken, "correct horse") {
			t.Fatalf("malformed verifier %q matched", broken)
		}
	}
}
