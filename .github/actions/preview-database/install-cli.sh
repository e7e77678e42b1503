#!/usr/bin/env bash
# Puts the released capydb CLI on PATH (a capydb already there is used as is).
set -euo pipefail

if command -v capydb >/dev/null 2>&1; then
  echo "capydb $(capydb --version 2>/dev/null | awk '{print $NF}') is already installed: $(command -v capydb)"
  exit 0
fi

os=$(uname -s | tr '[:upper:]' '[:lower:]')
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "::error::no capydb CLI release for $(uname -m)"; exit 1 ;;
esac
url=${CLI_DOWNLOAD_URL:-}
if [[ -z "$url" ]]; then
  version=${CLI_VERSION:-latest}
  if [[ "$version" == latest ]]; then
    url="https://github.com/capydb/capydb/releases/latest/download/capydb_${os}_${arch}.tar.gz"
  else
    url="https://github.com/capydb/capydb/releases/download/${version}/capydb_${os}_${arch}.tar.gz"
  fi
fi

dir="${RUNNER_TEMP:-$(mktemp -d)}/capydb-cli"
mkdir -p "$dir"
echo "Downloading $url"
curl -fsSL --retry 3 "$url" | tar -xz -C "$dir" capydb
chmod +x "$dir/capydb"
echo "$dir" >>"$GITHUB_PATH"
"$dir/capydb" --version
