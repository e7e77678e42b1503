package wire

import "time"

// ProjectObservability is GET …/observability (API.md §4.13).
type ProjectObservability struct {
	ConnectionCount        int                 `json:"connection_count"`
	ConnectionLimit        int                 `json:"connection_limit"`
	ConnectionUsagePercent float64             `json:"connection_usage_percent"`
	DatabaseSizeBytes      int64               `json:"database_size_bytes"`
	StorageLimitBytes      int64               `json:"storage_limit_bytes"`
	StorageUsagePercent    float64             `json:"storage_usage_percent" doc:"may exceed 100"`
	ActiveQueries          []ActiveQuerySample `json:"active_queries" doc:"non-idle sessions, longest running first (at most 50)"`
	PgStatStatements       bool                `json:"pg_stat_statements"`
	SlowQueries            []SlowQuerySample   `json:"slow_queries" doc:"top 10 by mean time; [] without pg_stat_statements"`
	Alerts                 []string            `json:"alerts" doc:"derived flags, e.g. database_size_over_90_percent"`
}

// ActiveQuerySample is one non-idle session.
type ActiveQuerySample struct {
	PID           int     `json:"pid"`
	Username      string  `json:"username"`
	State         string  `json:"state"`
	Query         string  `json:"query"`
	DurationMs    int64   `json:"duration_ms"`
	WaitEventType *string `json:"wait_event_type,omitempty"`
	WaitEvent     *string `json:"wait_event,omitempty"`
}

// SlowQuerySample is one pg_stat_statements entry.
type SlowQuerySample struct {
	Query           string   `json:"query"`
	Calls           int64    `json:"calls"`
	Rows            int64    `json:"rows"`
	MeanTimeMs      float64  `json:"mean_time_ms"`
	TotalTimeMs     float64  `json:"total_time_ms"`
	QueryID         *int64   `json:"query_id,omitempty"`
	JITTimeMs       *float64 `json:"jit_time_ms,omitempty"`
	SharedBlksHit   *int64   `json:"shared_blks_hit,omitempty"`
	SharedBlksRead  *int64   `json:"shared_blks_read,omitempty"`
	TempBlksRead    *int64   `json:"temp_blks_read,omitempty"`
	TempBlksWritten *int64   `json:"temp_blks_written,omitempty"`
}

// ObservabilitySample is one history point.
type ObservabilitySample struct {
	SampledAt         time.Time `json:"sampled_at"`
	Connections       int       `json:"connections"`
	ConnectionLimit   int       `json:"connection_limit"`
	ActiveQueries     int       `json:"active_queries"`
	BlockedQueries    int       `json:"blocked_queries" doc:"waiting on a lock"`
	AvgQueryMs        float64   `json:"avg_query_ms"`
	CacheHitRatio     float64   `json:"cache_hit_ratio" doc:"0-1, over the interval"`
	RollbackRatio     float64   `json:"rollback_ratio" doc:"0-1, over the interval"`
	Deadlocks         int64     `json:"deadlocks" doc:"in the interval"`
	DeadTuples        int64     `json:"dead_tuples" doc:"rows updated or deleted in the interval"`
	DatabaseSizeBytes int64     `json:"database_size_bytes"`
	StorageLimitBytes int64     `json:"storage_limit_bytes"`
}

// ProjectAlert is a usage alert.
type ProjectAlert struct {
	ID             string     `json:"id"`
	ProjectID      string     `json:"project_id"`
	Kind           string     `json:"kind" enum:"storage,connections"`
	Severity       string     `json:"severity" enum:"warning,critical"`
	ObservedValue  int64      `json:"observed_value"`
	LimitValue     int64      `json:"limit_value"`
	TriggeredAt    time.Time  `json:"triggered_at"`
	LastNotifiedAt *time.Time `json:"last_notified_at,omitempty"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
}

// NotificationPreferences is an organization's notification settings.
type NotificationPreferences struct {
	OrganizationID         string     `json:"organization_id"`
	AlertEmailsEnabled     bool       `json:"alert_emails_enabled"`
	AlertEmailRecipients   []string   `json:"alert_email_recipients"`
	BillingEmailRecipients []string   `json:"billing_email_recipients"`
	UpdatedAt              *time.Time `json:"updated_at" nullable:"true" doc:"null = never saved, defaults in effect"`
}

// PutNotificationPreferencesRequest replaces them.
type PutNotificationPreferencesRequest struct {
	AlertEmailsEnabled     bool     `json:"alert_emails_enabled"`
	AlertEmailRecipients   []string `json:"alert_email_recipients" maxItems:"10"`
	BillingEmailRecipients []string `json:"billing_email_recipients" maxItems:"10"`
}

// OrganizationUsage is GET /v1/organizations/{orgID}/usage.
type OrganizationUsage struct {
	Totals         UsageTotals    `json:"totals"`
	Projects       []ProjectUsage `json:"projects"`
	StorageHistory []DailyStorage `json:"storage_history" doc:"one per day for the last 30 days, oldest first"`
}

// UsageTotals sums an organization's usage.
type UsageTotals struct {
	Projects     int   `json:"projects"`
	Previews     int   `json:"previews"`
	StorageBytes int64 `json:"storage_bytes"`
	BackupBytes  int64 `json:"backup_bytes"`
	Connections  int   `json:"connections"`
}

// ProjectUsage is one project's usage.
type ProjectUsage struct {
	ProjectID         string `json:"project_id"`
	Name              string `json:"name"`
	Plan              string `json:"plan"`
	StorageBytes      int64  `json:"storage_bytes"`
	StorageLimitBytes int64  `json:"storage_limit_bytes"`
	Connections       int    `json:"connections"`
	ConnectionLimit   int    `json:"connection_limit"`
	Previews          int    `json:"previews"`
	PreviewLimit      *int   `json:"preview_limit" nullable:"true" doc:"null = unlimited"`
	BackupBytes       int64  `json:"backup_bytes"`
}

// DailyStorage is one day of storage history.
type DailyStorage struct {
	Date         string `json:"date" doc:"YYYY-MM-DD"`
	StorageBytes int64  `json:"storage_bytes"`
}

// ProjectLogs is GET …/logs.
type ProjectLogs struct {
	Entries    []ProjectLogEntry `json:"entries"`
	NextCursor string            `json:"next_cursor,omitempty" doc:"the cursor of the last entry, or empty when nothing is new (keep the previous one)"`
}

// ProjectLogEntry is one server log line of the project database.
type ProjectLogEntry struct {
	Timestamp time.Time `json:"timestamp"`
	Severity  string    `json:"severity" enum:"debug,log,info,notice,warning,error,fatal,panic,detail"`
	Message   string    `json:"message"`
	Cursor    string    `json:"cursor" doc:"opaque"`
	SQLState  *string   `json:"sqlstate,omitempty"`
	PID       *int      `json:"pid,omitempty"`
	User      *string   `json:"user,omitempty"`
	Database  *string   `json:"database,omitempty"`
}

// ProjectLogSearch is GET …/logs/search.
type ProjectLogSearch struct {
	Entries    []ProjectLogEntry `json:"entries"`
	NextCursor string            `json:"next_cursor,omitempty"`
	Truncated  bool              `json:"truncated"`
}
