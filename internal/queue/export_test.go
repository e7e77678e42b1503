package queue

import "context"

// ReleaseInDoubt and MarkClaimed expose the in-doubt claim release to the
// external tests.
func (w *Worker) ReleaseInDoubt(ctx context.Context) error { return w.releaseInDoubt(ctx) }

func (w *Worker) MarkClaimed(id string) {
	w.mu.Lock()
	w.claimed[id] = true
	w.mu.Unlock()
}
