#!/usr/bin/env bash
# make engine-tools: build the real Pulumi CLI, a language host, the Kubernetes provider, kube-apiserver
# and etcd from the Go module proxy (the only place this project may fetch Go code from).
#
# Each tool is built once per version into $ENGINE_TOOLS_CACHE/<tool>-<version>/ (outside the clone, so CI
# on the same machine reuses it) and linked into .engine-tools/bin/. A stamp file marks a finished build;
# a second run only re-links. Builds run at the lowest CPU priority: the machine has 2 shared cores.
#
# Versions: see engine/tools/versions.env and docs/engine.md for why some differ from the Python pins
# (the module proxy does not serve every tag).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
# shellcheck source=versions.env
source engine/tools/versions.env

CACHE=${ENGINE_TOOLS_CACHE:-$HOME/.cache/platform-engine-tools}
BIN=$ROOT/.engine-tools/bin
LOG_DIR=$CACHE/logs
mkdir -p "$CACHE" "$BIN" "$LOG_DIR"
export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
GO="nice -n 19 go"
ONLY=${ENGINE_TOOLS_ONLY:-}

log() { printf '[engine-tools] %s\n' "$*" >&2; }

# link TOOL VERSION: expose a finished build in .engine-tools/bin
link() {
  ln -sf "$CACHE/$1-$2/$1" "$BIN/$1"
}

# fresh_module DIR NAME: an empty throw-away main module to build a dependency's command from
fresh_module() {
  rm -rf "$1"
  mkdir -p "$1"
  printf 'module enginetools/%s\n\ngo 1.26\n' "$2" >"$1/go.mod"
}

# build TOOL VERSION FUNC [optional]: run FUNC (which leaves $out/TOOL) unless the stamp says it is done
build() {
  local tool=$1 version=$2 func=$3 optional=${4:-}
  local out=$CACHE/$tool-$version
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $tool "* ]]; then return 0; fi
  if [ -f "$out/.stamp" ] && [ -x "$out/$tool" ]; then
    link "$tool" "$version"
    log "$tool $version: cached"
    return 0
  fi
  log "$tool $version: building (log: $LOG_DIR/$tool-$version.log)"
  local started=$SECONDS
  mkdir -p "$out"
  if (out=$out version=$version "$func") >"$LOG_DIR/$tool-$version.log" 2>&1; then
    date -u +%FT%TZ >"$out/.stamp"
    link "$tool" "$version"
    log "$tool $version: built in $((SECONDS - started))s"
  else
    log "$tool $version: FAILED; last lines of the log:"
    tail -n 25 "$LOG_DIR/$tool-$version.log" >&2
    if [ -n "$optional" ]; then
      log "$tool is optional ($optional): the other tools do not depend on it"
    else
      FAILED="$FAILED $tool"
    fi
  fi
}

build_etcd() {
  local work=$CACHE/work/etcd
  fresh_module "$work" etcd
  # etcd's own main package lives in the repository's root module; the server module exports the
  # same entry point, so a two-line main builds the identical server.
  cat >"$work/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  cd "$work"
  $GO get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  $GO build -trimpath -ldflags "-s -w" -o "$out/etcd" .
}

# kube_module: the throw-away module both Kubernetes commands build from
kube_module() {
  local work=$CACHE/work/kubernetes
  fresh_module "$work" kubernetes
  cd "$work"
  $GO mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" >/dev/null
  local gomod minor=${KUBERNETES_VERSION#1.}
  gomod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$KUBERNETES_VERSION.mod
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and points them at ./staging; from the
  # proxy they are the published k8s.io/<name> v0.<minor>.<patch> releases of the same commit.
  {
    echo "require k8s.io/kubernetes v$KUBERNETES_VERSION"
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" |
      awk -v v="v0.$minor" '{print "replace " $1 " => " $1 " " v}'
  } >>go.mod
  $GO mod download
}

build_kube_apiserver() {
  kube_module
  kube_build kube-apiserver
}

# kube_build CMD: a k8s.io/kubernetes command, stamped with its release like the official binaries
kube_build() {
  local pkg=k8s.io/component-base/version minor=${KUBERNETES_VERSION#1.}
  $GO build -trimpath -o "$out/$1" -ldflags "-s -w \
    -X $pkg.gitVersion=v$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*} \
    -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z" "k8s.io/kubernetes/cmd/$1"
}

# The controller manager runs only the namespace, garbage-collector, service-account and quota controllers
# (engine/real/cluster.py): without them a deleted namespace never finishes terminating.
build_kube_controller_manager() {
  kube_module
  kube_build kube-controller-manager
}

build_pulumi() {
  local work=$CACHE/work/pulumi
  fresh_module "$work" pulumi
  cd "$work"
  # pkg/v3 points sdk/v3 at ../sdk in its repository; from the proxy it is the same-tag sdk/v3 release.
  # Its clipboard replace is copied because replace directives of dependencies are not applied.
  cat >>go.mod <<EOF
require (
	github.com/pulumi/pulumi/pkg/v3 v$PULUMI_CLI_VERSION
	github.com/pulumi/pulumi/sdk/v3 v$PULUMI_CLI_VERSION
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
EOF
  $GO mod download
  $GO build -trimpath -o "$out/pulumi" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_CLI_VERSION" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

build_language_yaml() {
  local work=$CACHE/work/pulumi-language-yaml
  fresh_module "$work" pulumi-language-yaml
  cd "$work"
  echo "require github.com/pulumi/pulumi-yaml v$PULUMI_YAML_VERSION" >>go.mod
  $GO mod download
  $GO build -trimpath -o "$out/pulumi-language-yaml" \
    -ldflags "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=v$PULUMI_YAML_VERSION" \
    github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml
}

build_language_python() {
  local work=$CACHE/work/pulumi-language-python
  fresh_module "$work" pulumi-language-python
  cd "$work"
  echo "require github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 v$PULUMI_SDK_VERSION" >>go.mod
  $GO mod download
  $GO build -trimpath -o "$out/pulumi-language-python" -ldflags "-s -w" \
    github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
}

build_provider() {
  local work=$CACHE/work/pulumi-resource-kubernetes
  local mod=github.com/pulumi/pulumi-kubernetes/provider/v4
  rm -rf "$work"
  mkdir -p "$work"
  cd "$work"
  $GO mod download -json "$mod@$PULUMI_KUBERNETES_PROVIDER_VERSION" >/dev/null
  # The provider embeds a schema that its release build generates beside the committed schema.json, and
  # its go.mod points the Go SDK at ../sdk: a writable copy gets both from the module's own files.
  cp -r "$(go env GOMODCACHE)/$mod@$PULUMI_KUBERNETES_PROVIDER_VERSION" src
  chmod -R u+w src
  cd src
  sed -i '/^replace github.com\/pulumi\/pulumi-kubernetes\/sdk\/v4 => /d' go.mod
  "$PYTHON" "$ROOT/engine/tools/embed_schema.py" cmd/pulumi-resource-kubernetes "$PULUMI_KUBERNETES_PROVIDER_VERSION"
  $GO mod download
  $GO build -trimpath -o "$out/pulumi-resource-kubernetes" \
    -ldflags "-s -w -X $mod/pkg/version.Version=$PULUMI_KUBERNETES_PROVIDER_VERSION" ./cmd/pulumi-resource-kubernetes
}

PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
FAILED=""
build etcd "$ETCD_VERSION" build_etcd
build kube-apiserver "$KUBERNETES_VERSION" build_kube_apiserver
build kube-controller-manager "$KUBERNETES_VERSION" build_kube_controller_manager
build pulumi-resource-kubernetes "$PULUMI_KUBERNETES_PROVIDER_VERSION" build_provider
build pulumi "$PULUMI_CLI_VERSION" build_pulumi
build pulumi-language-yaml "$PULUMI_YAML_VERSION" build_language_yaml
# Not served by the proxy today (403 at every version); tried on every run so it is used once it is.
build pulumi-language-python "$PULUMI_SDK_VERSION" build_language_python "not served by the module proxy"
if [ -n "$FAILED" ]; then
  log "not built:$FAILED"
  exit 1
fi
log "all tools in $BIN"
