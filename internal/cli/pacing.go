package cli

import (
	"context"
	"time"

	"github.com/capydb/capydb/internal/apiclient"
)

// pacing is how long the client waits between GET retries, job polls and
// device-login polls. Main uses the defaults; tests hand shorter ones to run
// through its context, so no package variable serves as a knob.
type pacing struct {
	retryDelays []time.Duration
	jobPoll     func(n int) time.Duration
	loginPoll   time.Duration
	throttled   time.Duration // the least wait after a 429 while polling a job
}

type pacingKey struct{}

func defaultPacing() pacing {
	return pacing{retryDelays: apiclient.DefaultDelays, jobPoll: pollSchedule, loginPoll: 2 * time.Second, throttled: time.Second}
}

// withPacing returns ctx carrying p for the commands run under it.
func withPacing(ctx context.Context, p pacing) context.Context {
	return context.WithValue(ctx, pacingKey{}, p)
}

func pacingFrom(ctx context.Context) pacing {
	if p, ok := ctx.Value(pacingKey{}).(pacing); ok {
		return p
	}
	return defaultPacing()
}
