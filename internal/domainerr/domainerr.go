// Package domainerr is the one vocabulary for errors a caller caused: each
// carries a Kind (not found, gone, conflict, invalid, forbidden,
// precondition, unavailable) and a message that is safe to show. Domain packages
// (lifecycle, webhooks) return them; only package api turns a Kind into an
// HTTP status, in one mapper.
package domainerr

import (
	"errors"
	"fmt"
)

// Kind says what went wrong, independent of any transport.
type Kind string

// The kinds.
const (
	NotFound     Kind = "not_found"    // no such resource (or not visible to the caller)
	Gone         Kind = "gone"         // it existed but has expired
	Conflict     Kind = "conflict"     // the resource's state does not allow the change
	Invalid      Kind = "invalid"      // the request itself is wrong
	Forbidden    Kind = "forbidden"    // the caller may not do this (e.g. a bad approval token)
	Precondition Kind = "precondition" // something must be supplied first (an approval token)
	Unavailable  Kind = "unavailable"  // the service cannot do it now (no cluster open)
)

// Error is a caller-caused error of one Kind.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// New returns an *Error of kind with msg.
func New(kind Kind, msg string) error { return &Error{Kind: kind, Msg: msg} }

// Errorf returns an *Error of kind with a formatted message.
func Errorf(kind Kind, format string, a ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, a...)}
}

// KindOf returns the kind of the first *Error in err's chain, or "".
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}
