package queue

import "errors"

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// PermanentError wraps err so the job fails at once instead of being retried.
func PermanentError(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err was marked permanent. Anything else is
// treated as transient: network errors, lock timeouts, a restarting cluster.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
