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
	// Msg is the 400 message of a request value outside Values (the wording
	// the handlers used before the document carried the enums); nil = huma's
	// "expected value to be one of ...".
	Msg func(v string) string
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
	clusterStates      = []string{"active", "cordoned", "draining", "offline", "fenced"} // cordoned †, fenced †
	statusValues       = []string{"operational", "degraded", "outage"}
	auditActorKinds    = []string{"user", "api_key", "operator", "system"}
	pointActorKinds    = []string{"user", "api_key", "system"}
)

// enumFields lists every enumerated field of the document. The contract
// test fails when a row names a schema or property the document lacks.
var enumFields = []enumField{
	{"Organization", "billing_plan", planNames, nil},
	{"Organization", "billing_status", []string{"active"}, nil},
	{"Organization", "billing_provider", []string{"self_hosted"}, nil},
	{"Project", "plan", planNames, nil},
	{"Project", "state", projectStates, nil},
	{"Project", "runtime_status", []string{"active"}, nil},
	{"Project", "environment", environments, nil},
	{"Project", "postgres_channel", pgChannels, nil},
	{"CreateProjectBody", "environment", optional(environments), envMsg},
	{"UpdateProjectBody", "environment", optional(environments), envMsg},
	{"PreviewDatabase", "mode", previewModes, nil},
	{"PreviewDatabase", "state", previewStates, nil},
	{"PreviewDatabase", "source_kind", previewSourceKinds, nil},
	{"CreatePreviewBody", "mode", optional(previewModes), fixedMsg("mode must be empty or clone")},
	{"Job", "state", jobStates, nil},
	{"Job", "type", lifecycle.JobTypes(), nil},
	{"Job", "retry_classification", retryClasses, nil},
	{"Principal", "auth_source", authSources, nil},
	{"Principal", "scopes[]", allScopes, nil},
	{"APIKey", "source", keySources, nil},
	{"APIKey", "scopes[]", allScopes, nil},
	{"CreateAPIKeyBody", "scopes[]", allScopes, scopeMsg},
	{"ApprovalBody", "action", lifecycle.ApprovalActions, fixedMsg("action must be one of " + strings.Join(lifecycle.ApprovalActions, ", "))},
	{"ApprovalStruct", "action", lifecycle.ApprovalActions, nil},
	{"CLILoginStartBody", "source", optional(loginSources), fixedMsg("source must be cli or agent")},
	{"CLILoginStartBody", "scopes[]", allScopes, scopeMsg},
	{"CLILoginStartOutputBody", "state", loginStates, nil},
	{"CLILoginPollOutputBody", "state", loginStates, nil},
	{"CLILoginDetails", "state", loginStates, nil},
	{"CLILoginDetails", "source", loginSources, nil},
	{"CLILoginDetails", "scopes[]", allScopes, nil},
	{"WebhookEndpoint", "event_types[]", webhookEvents, nil},
	{"WebhookEndpoint", "health", endpointHealth, nil},
	{"CreateWebhookEndpointBody", "event_types[]", webhookEvents, eventMsg},
	{"UpdateWebhookEndpointBody", "event_types[]", webhookEvents, eventMsg},
	{"WebhookDelivery", "event_type", deliveredEvents, nil},
	{"WebhookDelivery", "state", deliveryStates, nil},
	{"Backup", "state", backupStates, nil},
	{"Backup", "verification_state", verificationStates, nil},
	{"Backup", "kind", backupKinds, nil},
	{"ProjectExport", "state", exportStates, nil},
	{"CreateRestoreRequest", "target_kind", optional(targetKinds), fixedMsg("target_kind must be new_preview, preview or project")},
	{"RestoreJobResult", "target_kind", targetKinds, nil},
	{"RestorePoint", "kind", restorePointKinds, nil},
	{"RestorePoint", "state", restorePointStates, nil},
	{"RestorePoint", "created_by_actor_kind", pointActorKinds, nil},
	{"CreateRestorePointRequest", "kind", optional(append(slices.Clone(restorePointKinds), "snapshot")), fixedMsg("kind must be backup or pitr")},
	{"PreflightCheck", "name", preflightChecks, nil},
	{"PreflightCheck", "status", preflightStatuses, nil},
	{"SourceInspection", "provider", sourceProviders, nil},
	{"PostgresVersion", "channel", pgChannels, nil},
	{"Cluster", "provider", clusterProviders, nil},
	{"Cluster", "state", clusterStates, nil},
	{"StatusOutputBody", "status", statusValues, nil},
	{"StatusComponent", "status", statusValues, nil},
	{"RegionStatus", "status", statusValues, nil},
	{"ProjectAuditEvent", "actor_kind", auditActorKinds, nil},
	{"ProjectIntegration", "provider", lifecycle.Providers, nil},
	{"ProjectIntegration", "state", []string{store.IntegrationActive, store.IntegrationError}, nil},
}

// optional adds "", which an optional request string means "not given" (API.md §1.2).
func optional(values []string) []string { return append(slices.Clone(values), "") }

func fixedMsg(msg string) func(string) string { return func(string) string { return msg } }

var (
	envMsg   = fixedMsg("environment must be one of production or non_production")
	scopeMsg = func(v string) string { return fmt.Sprintf("scopes: unknown scope %q", v) }
	eventMsg = func(v string) string {
		if v == webhooks.TestEvent {
			return fmt.Sprintf("event_types: %s cannot be subscribed to (only the test route sends it)", v)
		}
		return fmt.Sprintf("event_types: unknown event type %q (valid: %s)", v, strings.Join(webhooks.Catalogue, ", "))
	}
)

// enumMessages finds a row's Msg from a validation error: by the field's
// JSON name and the exact value list huma names, so a same-named field with
// other values elsewhere keeps huma's message.
var enumMessages = func() map[string]func(string) string {
	m := map[string]func(string) string{}
	for _, e := range enumFields {
		if e.Msg != nil {
			name, _ := strings.CutSuffix(e.Field, "[]")
			m[name+"\x00"+strings.Join(e.Values, ", ")] = e.Msg
		}
	}
	return m
}()

// enumMessage is the row's message for a value outside the enum, if any.
func enumMessage(field, hint, value string) (string, bool) {
	list, ok := strings.CutPrefix(hint, "expected value to be one of \"")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(field, "[")
	msg := enumMessages[name+"\x00"+strings.TrimSuffix(list, "\"")]
	if msg == nil {
		return "", false
	}
	return msg(value), true
}
