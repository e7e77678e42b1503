package api

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/plan"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/webhooks"
)

// enumField publishes the values of one enumerated field (API.md §5) as
// the enum of a schema property. Values come from the constants the code
// uses wherever such constants exist, so the document cannot drift from
// what the server sends or accepts. Field "x[]" means the items of array x.
type enumField struct {
	Schema, Field string
	Values        []string
}

// The value sets. Those without a constant elsewhere are listed here, next
// to the wire contract, and nowhere else.
var (
	planNames          = slices.Sorted(maps.Keys(plan.Defaults))
	projectStates      = store.EntityStates[store.EntityProject]
	previewStates      = store.EntityStates[store.EntityPreview]
	backupStates       = store.EntityStates[store.EntityBackup]
	exportStates       = store.EntityStates[store.EntityExport]
	environments       = []string{lifecycle.EnvProduction, lifecycle.EnvNonProduction}
	previewModes       = []string{store.PreviewModeEmpty, store.PreviewModeClone}
	previewSourceKinds = []string{store.PreviewModeEmpty, store.PreviewModeClone, "backup", "pitr"}
	jobStates          = []string{queue.StatePending, queue.StateRunning, queue.StateCompleted, queue.StateFailed}
	retryClasses       = []string{queue.Transient, queue.Permanent, ""}
	allScopes          = append([]string{auth.ScopeAll}, auth.AllScopes...)
	authSources        = []string{auth.SourceAPIKey, auth.SourceSession, "admin_token"}
	keySources         = []string{auth.KeySourceAPI, auth.KeySourceDashboard, auth.KeySourceCLI, auth.KeySourceAgent}
	loginSources       = []string{auth.KeySourceCLI, auth.KeySourceAgent}
	loginStates        = []string{"pending", "completed"}
	webhookEvents      = webhooks.Catalogue
	deliveredEvents    = append(slices.Clone(webhooks.Catalogue), webhooks.TestEvent)
	deliveryStates     = []string{store.DeliveryPending, store.DeliveryDelivered, store.DeliveryFailed}
	endpointHealth     = []string{"healthy", "failing", "disabled"}
	verificationStates = []string{store.VerifyPending, store.VerifyVerified, store.VerifyFailed, store.VerifyUnverified}
	backupKinds        = []string{store.BackupKindManual, store.BackupKindScheduled, store.BackupKindNightly, store.BackupKindPreRestore}
	targetKinds        = []string{lifecycle.TargetNewPreview, lifecycle.TargetPreview, lifecycle.TargetProject}
	restorePointKinds  = []string{"backup", "pitr"}
	restorePointStates = []string{"active", "expired"}
	preflightChecks    = []string{"source_reachable", "source_size_within_plan", "source_version_compatible", "extensions_available_on_target"}
	preflightStatuses  = []string{"pass", "warn", "fail"}
	sourceProviders    = []string{"heroku", "aurora", "rds", "alloydb", "cloudsql", "azure", "neon", "supabase", "aiven", "capydb", "other"}
	pgChannels         = []string{"previous", "stable", "current", "beta"}
	clusterProviders   = []string{"embedded", "external"}
	clusterStates      = []string{"active", "draining", "offline"}
	statusValues       = []string{"operational", "degraded", "outage"}
	auditActorKinds    = []string{"user", "api_key", "operator", "system"}
	pointActorKinds    = []string{"user", "api_key", "system"}
)

// enumFields lists every enumerated field of the document. The contract
// test fails when a row names a schema or property the document lacks.
var enumFields = []enumField{
	{"Organization", "billing_plan", planNames},
	{"Organization", "billing_status", []string{"active"}},
	{"Organization", "billing_provider", []string{"self_hosted"}},
	{"Project", "plan", planNames},
	{"Project", "state", projectStates},
	{"Project", "runtime_status", []string{"active"}},
	{"Project", "environment", environments},
	{"Project", "postgres_channel", pgChannels},
	{"CreateProjectBody", "environment", optional(environments)},
	{"UpdateProjectBody", "environment", optional(environments)},
	{"PreviewDatabase", "mode", previewModes},
	{"PreviewDatabase", "state", previewStates},
	{"PreviewDatabase", "source_kind", previewSourceKinds},
	{"CreatePreviewBody", "mode", optional(previewModes)},
	{"Job", "state", jobStates},
	{"Job", "type", lifecycle.JobTypes()},
	{"Job", "retry_classification", retryClasses},
	{"Principal", "auth_source", authSources},
	{"Principal", "scopes[]", allScopes},
	{"APIKey", "source", keySources},
	{"APIKey", "scopes[]", allScopes},
	{"CreateAPIKeyBody", "scopes[]", allScopes},
	{"ApprovalBody", "action", lifecycle.ApprovalActions},
	{"ApprovalStruct", "action", lifecycle.ApprovalActions},
	{"CLILoginStartBody", "source", optional(loginSources)},
	{"CLILoginStartBody", "scopes[]", allScopes},
	{"CLILoginStartOutputBody", "state", loginStates},
	{"CLILoginPollOutputBody", "state", loginStates},
	{"CLILoginDetails", "state", loginStates},
	{"CLILoginDetails", "source", loginSources},
	{"CLILoginDetails", "scopes[]", allScopes},
	{"WebhookEndpoint", "event_types[]", webhookEvents},
	{"WebhookEndpoint", "health", endpointHealth},
	{"CreateWebhookEndpointBody", "event_types[]", webhookEvents},
	{"UpdateWebhookEndpointBody", "event_types[]", webhookEvents},
	{"WebhookDelivery", "event_type", deliveredEvents},
	{"WebhookDelivery", "state", deliveryStates},
	{"Backup", "state", backupStates},
	{"Backup", "verification_state", verificationStates},
	{"Backup", "kind", backupKinds},
	{"ProjectExport", "state", exportStates},
	{"CreateRestoreRequest", "target_kind", optional(targetKinds)},
	{"RestoreJobResult", "target_kind", targetKinds},
	{"RestorePoint", "kind", restorePointKinds},
	{"RestorePoint", "state", restorePointStates},
	{"RestorePoint", "created_by_actor_kind", pointActorKinds},
	{"CreateRestorePointRequest", "kind", optional(append(slices.Clone(restorePointKinds), "snapshot"))},
	{"PreflightCheck", "name", preflightChecks},
	{"PreflightCheck", "status", preflightStatuses},
	{"SourceInspection", "provider", sourceProviders},
	{"PostgresVersion", "channel", pgChannels},
	{"Cluster", "provider", clusterProviders},
	{"Cluster", "state", clusterStates},
	{"StatusOutputBody", "status", statusValues},
	{"StatusComponent", "status", statusValues},
	{"RegionStatus", "status", statusValues},
	{"ProjectAuditEvent", "actor_kind", auditActorKinds},
}

// optional adds "", which an optional request string means "not given" (API.md §1.2).
func optional(values []string) []string { return append(slices.Clone(values), "") }

// enumMessages are the 400 messages of request fields whose value is not
// in the enum, by JSON field name: the wording the handlers used before the
// document carried the enums (clients show messages as they are).
var enumMessages = map[string]func(v string) string{
	"environment": func(string) string { return "environment must be one of production or non_production" },
	"mode":        func(string) string { return "mode must be empty or clone" },
	"target_kind": func(string) string { return "target_kind must be new_preview, preview or project" },
	"kind":        func(string) string { return "kind must be backup or pitr" },
	"action": func(string) string {
		return "action must be one of " + strings.Join(lifecycle.ApprovalActions, ", ")
	},
	"source": func(string) string { return "source must be cli or agent" },
	"scopes": func(v string) string { return fmt.Sprintf("scopes: unknown scope %q", v) },
	"event_types": func(v string) string {
		if v == webhooks.TestEvent {
			return fmt.Sprintf("event_types: %s cannot be subscribed to (only the test route sends it)", v)
		}
		return fmt.Sprintf("event_types: unknown event type %q (valid: %s)", v, strings.Join(webhooks.Catalogue, ", "))
	},
}
