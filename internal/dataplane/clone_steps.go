package dataplane

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// CloneStep is how long one step of a build took; the job logs them so the
// clone benchmark can show where a build's time goes.
type CloneStep struct {
	Name string
	D    time.Duration
}

// steps records consecutive laps of a build.
type steps struct {
	list []CloneStep
	last time.Time
}

func newSteps() *steps { return &steps{last: time.Now()} }

// lap closes the step that started at the previous lap.
func (s *steps) lap(name string) {
	if s == nil {
		return
	}
	now := time.Now()
	s.list = append(s.list, CloneStep{Name: name, D: now.Sub(s.last)})
	s.last = now
}

// FormatSteps renders steps as "name=12ms name=3ms" for a log line.
func FormatSteps(list []CloneStep) string {
	parts := make([]string, 0, len(list))
	for _, st := range list {
		parts = append(parts, fmt.Sprintf("%s=%dms", st.Name, st.D.Milliseconds()))
	}
	return strings.Join(parts, " ")
}

// pendingAgent is the union agent reassignOwnership needs. It depends only
// on the two roles, so it is created while the copy runs instead of after.
type pendingAgent struct {
	done     chan struct{}
	a        *agent
	srcOwner string
	err      error
}

func (c *Cluster) startOwnerAgent(ctx context.Context, source, owner string) *pendingAgent {
	pa := &pendingAgent{done: make(chan struct{})}
	go func() {
		defer close(pa.done)
		if pa.srcOwner, pa.err = c.databaseOwner(ctx, source); pa.err == nil {
			pa.a, pa.err = c.newUnionAgent(ctx, owner, pa.srcOwner)
		}
	}()
	return pa
}

func (pa *pendingAgent) wait() (*agent, string, error) {
	<-pa.done
	return pa.a, pa.srcOwner, pa.err
}

// close drops the agent once it exists (on every path out of a build).
func (pa *pendingAgent) close(ctx context.Context) {
	if a, _, err := pa.wait(); err == nil {
		_ = a.close(ctx)
	}
}
