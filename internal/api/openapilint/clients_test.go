package openapilint

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tsUses compiles only if the generated TypeScript types are what the
// document promises: enums are unions, lists are never null, job results
// are typed, errors (429 included) have the error body.
const tsUses = `import type { Project, Job, JobsOutputBody, ApiError, BackupJobResult, GetJobErrors, UpsertScheduledBackupRequest } from './client/types.gen';

export const state: Project['state'] = 'ready';
// @ts-expect-error Project.state is an enum
export const badState: Project['state'] = 'sleeping';
export const jobType: Job['type'] = 'branch.create';
// @ts-expect-error Job.type is an enum
export const badType: Job['type'] = 'no.such_job';
// @ts-expect-error lists are never null
export const jobs: JobsOutputBody['jobs'] = null;
export const result: Job['result'] = { backup_id: 'bkp_1', backup_key: 'k', size_bytes: 1 } satisfies BackupJobResult;
export const limited: GetJobErrors[429] = { error: 'rate limit exceeded' } satisfies ApiError;
// @ts-expect-error cron_hour is required and not nullable
export const schedule: UpsertScheduledBackupRequest = { cron_hour: null, cron_minute: 0, is_active: true };
`

const tsConfig = `{"compilerOptions": {"strict": true, "noEmit": true, "target": "ES2022", "module": "ESNext",
 "moduleResolution": "Bundler", "lib": ["ES2022", "DOM", "DOM.Iterable"], "types": []},
 "include": ["client/**/*.ts", "uses.ts"]}
`

// TestTypeScriptClientCompiles generates a client with @hey-api/openapi-ts
// and type-checks it, with tsUses, using tsc --noEmit.
func TestTypeScriptClientCompiles(t *testing.T) {
	setup(t)
	dir := t.TempDir()
	if out, err, stderr := tool(t, dir, "openapi-ts", "-i", docPath, "-o", filepath.Join(dir, "client"), "-c", "@hey-api/client-fetch"); err != nil {
		t.Fatalf("openapi-ts: %v\n%s\n%s", err, out, stderr)
	}
	write(t, filepath.Join(dir, "uses.ts"), tsUses)
	write(t, filepath.Join(dir, "tsconfig.json"), tsConfig)
	if out, err, stderr := tool(t, dir, "tsc", "-p", filepath.Join(dir, "tsconfig.json")); err != nil {
		t.Fatalf("tsc --noEmit: %v\n%s\n%s", err, out, stderr)
	}
}

// goUses compiles only if the oapi-codegen client has the promised types:
// enum constants, non-pointer lists, one ApiError field per declared error
// status (JSON429, not ApplicationjsonCharsetUtf8Default) and typed results.
const goUses = `package check

var (
	_ ProjectState = ProjectStateReady
	_ JobType      = JobTypeBranchCreate
	_ []Job        = JobsOutputBody{}.Jobs
	_ *ApiError    = GetJobResponse{}.JSON404
	_ *ApiError    = GetJobResponse{}.JSON429
	_ *ApiError    = GetJobResponse{}.JSONDefault
	_ *JobProgress = Job{}.Progress
	_              = Job_Result.AsBackupJobResult
	_ int64        = UpsertScheduledBackupRequest{}.CronHour
	_ *PITRRestoreTarget = RestoreCreateOutBody{}.Pitr
)
`

// TestGoClientCompiles generates a client with oapi-codegen (pinned in the
// tools/oapi-codegen module) and builds and vets it with goUses.
func TestGoClientCompiles(t *testing.T) {
	setup(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go is not on PATH")
	}
	mod := filepath.Join(root, "tools", "oapi-codegen")
	gen, uses := filepath.Join(mod, "check", "client_gen.go"), filepath.Join(mod, "check", "uses_gen.go")
	t.Cleanup(func() { os.Remove(gen); os.Remove(uses) })
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir = mod
		// The tools module resolves its own dependencies.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
	run("tool", "oapi-codegen", "-generate", "types,client", "-package", "check", "-o", gen, docPath)
	write(t, uses, goUses)
	run("build", "./check/")
	run("vet", "./check/")
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
