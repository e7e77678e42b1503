package domainerr

import (
	"errors"
	"fmt"
	"testing"
)

func TestKindOf(t *testing.T) {
	err := fmt.Errorf("while restoring: %w", Errorf(Gone, "backup %s has expired", "bkp_1"))
	if KindOf(err) != Gone {
		t.Fatalf("KindOf = %q", KindOf(err))
	}
	var e *Error
	if !errors.As(err, &e) || e.Msg != "backup bkp_1 has expired" {
		t.Fatalf("message: %v", err)
	}
	if KindOf(errors.New("plain")) != "" {
		t.Fatal("a plain error has no kind")
	}
}
