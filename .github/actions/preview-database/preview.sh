#!/usr/bin/env bash
# The preview-database action's logic: on pull_request opened/reopened/
# synchronize, create the pull request's preview (or reset it to a fresh copy
# of the project) and output its URLs, masked; on closed, delete it.
# Reads the GitHub event payload at $GITHUB_EVENT_PATH; writes $GITHUB_OUTPUT.
set -euo pipefail

die() {
  echo "::error::$*"
  exit 1
}
for v in CAPYDB_API_URL CAPYDB_API_KEY PREVIEW_PROJECT GITHUB_EVENT_PATH GITHUB_OUTPUT; do
  [[ -n "${!v:-}" ]] || die "$v is not set (see the action's inputs)"
done
command -v jq >/dev/null || die "jq is required"

case "${GITHUB_EVENT_NAME:-}" in
  pull_request | pull_request_target) ;;
  *) die "run this action on pull_request (or pull_request_target) events, not '${GITHUB_EVENT_NAME:-}'" ;;
esac
event_action=$(jq -r '.action // ""' "$GITHUB_EVENT_PATH")
number=$(jq -r '.pull_request.number // .number // ""' "$GITHUB_EVENT_PATH")
[[ "$number" =~ ^[0-9]+$ ]] || die "the event payload names no pull request number"
head_sha=$(jq -r '.pull_request.head.sha // ""' "$GITHUB_EVENT_PATH")
name=${PREVIEW_NAME:-pr-$number}
project=$PREVIEW_PROJECT
timeout=${PREVIEW_WAIT_TIMEOUT:-10m}

output() { printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"; }
summary() { [[ -z "${GITHUB_STEP_SUMMARY:-}" ]] || printf '%s\n' "$1" >>"$GITHUB_STEP_SUMMARY"; }
output preview_name "$name"

# The live preview called $name: "<id> <state>", or nothing.
find_preview() {
  capydb preview list --project "$project" -o json |
    jq -r --arg n "$name" '[.previews[] | select(.name == $n and .state != "deleting")][0] // empty | "\(.id) \(.state)"'
}

# url=<the preview's URL>, pooled or direct, masked (with its password)
# before anything can print it.
preview_url() {
  url=$(capydb connection-string --project "$project" --preview "$1" ${2:+--pooled} -o json | jq -r .connection_string)
  [[ "$url" == postgres* ]] || die "no connection URL for preview $1"
  echo "::add-mask::$url"
  local creds=${url#*://}
  creds=${creds%%@*}
  [[ "$creds" != *:* ]] || echo "::add-mask::${creds#*:}"
}

comment() {
  [[ "${PREVIEW_COMMENT:-false}" == true ]] || return 0
  [[ -n "${GITHUB_TOKEN:-}" && -n "${GITHUB_REPOSITORY:-}" ]] || die "comment: true needs github-token and GITHUB_REPOSITORY"
  local api=${GITHUB_API_URL:-https://api.github.com}
  jq -n --arg body "$1" '{body: $body}' |
    curl -fsS -o /dev/null -X POST \
      -H "Accept: application/vnd.github+json" \
      -H "Authorization: Bearer $GITHUB_TOKEN" \
      -H "X-GitHub-Api-Version: 2022-11-28" \
      -H "Content-Type: application/json" \
      --data-binary @- "$api/repos/$GITHUB_REPOSITORY/issues/$number/comments"
}

case "$event_action" in
  opened | reopened | synchronize)
    found=$(find_preview)
    read -r id state <<<"$found" || true
    if [[ -n "${id:-}" && "$state" == failed ]]; then
      echo "Preview $name ($id) failed earlier; deleting it to build it again"
      capydb preview delete --project "$project" --preview "$id" --wait --wait-timeout "$timeout" -o json >/dev/null
      id=""
    fi
    if [[ -n "${id:-}" ]]; then
      echo "Resetting preview $name ($id) to a fresh copy of $project"
      capydb preview reset --project "$project" --preview "$id" --wait --wait-timeout "$timeout" -o json >/dev/null
      capydb preview extend "$id" --project "$project" --ttl-hours "${PREVIEW_TTL_HOURS:-72}" -o json >/dev/null
      did=reset
    else
      echo "Creating preview $name of $project"
      id=$(capydb preview create --project "$project" --name "$name" --mode "${PREVIEW_MODE:-clone}" \
        --ttl-hours "${PREVIEW_TTL_HOURS:-72}" --wait --wait-timeout "$timeout" -o json | jq -r .preview.id)
      did=created
    fi
    preview_url "$id" pooled
    pooled=$url
    preview_url "$id" ""
    direct=$url
    output preview_id "$id"
    output database_url "$pooled"
    output database_url_unpooled "$direct"
    output action "$did"
    host=${direct#*@}
    host=${host%%/*}
    echo "Preview $name ($id) $did; host $host"
    summary "CapyDB preview \`$name\` ($id) $did on $host."
    comment "CapyDB preview database \`$name\` (\`$id\`) $did${head_sha:+ for ${head_sha:0:7}} on \`$host\`. The workflow gets its URLs as the \`database_url\` and \`database_url_unpooled\` outputs."
    ;;
  closed)
    found=$(find_preview)
    read -r id state <<<"$found" || true
    if [[ -n "${id:-}" ]]; then
      echo "Deleting preview $name ($id)"
      capydb preview delete --project "$project" --preview "$id" --wait --wait-timeout "$timeout" -o json >/dev/null
      output preview_id "$id"
      output action deleted
      summary "CapyDB preview \`$name\` ($id) deleted."
    else
      echo "No preview named $name: nothing to delete"
      output action none
    fi
    ;;
  *)
    echo "Nothing to do on pull_request '$event_action' (the action handles opened, reopened, synchronize and closed)"
    output action none
    ;;
esac
