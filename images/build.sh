#!/usr/bin/env bash
# Build the sandbox's images with no container registry: a Debian base made with debootstrap and
# `docker import`ed, then the sink and llama.cpp images FROM it, built offline (--network none).
# An image whose tag exists with the same recipe label is kept, so a second run takes seconds.
# Usage: bash images/build.sh [--vllm]   (see images/README.md)
set -euo pipefail
cd "$(dirname "$0")/.."
# The classic builder: the daemon is 20.10 and a newer client would insist on buildx.
export DOCKER_BUILDKIT=0

SUITE=bookworm
BASE_PACKAGES=python3,ca-certificates,iproute2,iptables
BASE=localhost/sandbox-base:$SUITE
PROJECT_VERSION=$(sed -n 's/^version = "\([^"]*\)"/\1/p' pyproject.toml | head -n1)
LLAMA_VERSION=$(sed -n 's/.*"llama-cpp-python\[server\]==\([0-9.]*\)".*/\1/p' pyproject.toml)
SINK=localhost/sandbox-sink:$PROJECT_VERSION
LLAMA=localhost/sandbox-llama:$LLAMA_VERSION
LABEL=org.sandbox.recipe
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
tmpdirs=()

# --one-file-system: a failed debootstrap may leave /proc or /sys mounted in its root.
clean_up() {
  local dir
  for dir in "${tmpdirs[@]}"; do rm -rf --one-file-system "$dir"; done
}
trap clean_up EXIT

say() { printf 'images: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# Sets $tmpdir to a new folder that is removed on exit (no $(...): a subshell would lose the list).
new_tmpdir() {
  tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/sandbox-images.XXXXXX")
  tmpdirs+=("$tmpdir")
}

sha() { sha256sum | cut -d' ' -f1; }

# True when the tag exists and carries this recipe hash.
is_current() {
  local label
  label=$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null) || return 1
  [ "$label" = "$2" ]
}

report() {
  local bytes
  bytes=$(docker image inspect -f '{{ .Size }}' "$1")
  say "$1: $(numfmt --to=si --suffix=B "$bytes") ($2)"
}

# The Debian mirror of this host's own apt configuration: the first URI of a deb822 stanza whose
# Suites include $SUITE, else the first one-line `deb` entry (for $SUITE if there is one).
debian_mirror() {
  local mirror="" sources=(/etc/apt/sources.list.d/*.sources) lists=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
  mirror=$(awk -v suite="$SUITE" 'BEGIN { RS = "" } {
      uri = ""; deb = 0; match_suite = 0; n = split($0, line, "\n")
      for (i = 1; i <= n; i++) {
        if (line[i] ~ /^Types:/ && line[i] ~ /[ \t]deb([ \t]|$)/) deb = 1
        if (line[i] ~ /^URIs:/ && uri == "") { split(line[i], f, /[ \t]+/); uri = f[2] }
        if (line[i] ~ /^Suites:/) { m = split(line[i], s, /[ \t]+/); for (j = 2; j <= m; j++) if (s[j] == suite) match_suite = 1 }
      }
      if (deb && match_suite && uri != "") { print uri; exit }
    }' "${sources[@]}" 2>/dev/null || true)
  if [ -z "$mirror" ]; then
    mirror=$(awk -v suite="$SUITE" '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if (first == "") first = $i
        if ($(i + 1) == suite) { print $i; found = 1; exit }
      } END { if (!found && first != "") print first }' "${lists[@]}" 2>/dev/null || true)
  fi
  [ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list{,.d}: add a deb entry for $SUITE."
  echo "$mirror"
}

# debootstrap a minimal $SUITE, trim it the way moby's contrib/mkimage/debootstrap does, import it.
build_base() {
  local hash=$1 rootfs mirror
  [ "$(id -u)" -eq 0 ] || die "debootstrap needs root: run \`sudo make images\`."
  command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap."
  mirror=$(debian_mirror)
  new_tmpdir
  rootfs=$tmpdir
  say "debootstrap $SUITE from $mirror (about two minutes)"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$mirror" >&2
  # Nothing may start services inside a container; apt keeps no caches, lists or translations.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  printf 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };\nDir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' \
    >"$rootfs/etc/apt/apt.conf.d/docker-clean"
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  # Like Debian's -slim images (debuerreotype-slimify): no documentation, manuals or translations,
  # now or from packages installed later; the copyright files stay.
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/linda/*' 'path-exclude /usr/share/lintian/overrides/*' \
    'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/man/*' \
    >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim"
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/*
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/*.log \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old
  tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change "LABEL $LABEL=$hash" --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
    - "$BASE" >/dev/null
}

build_sink() {
  docker build -q --network none --label "$LABEL=$1" -t "$SINK" images/sink >/dev/null
}

# Debian packages for the base image, downloaded on this host with a private apt state (the
# host's mirror and keys, the base image's dpkg status), so that the build needs no network.
fetch_debs() {
  local dest=$1 state apt
  shift
  new_tmpdir
  state=$tmpdir
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/parts" "$state/prefs"
  printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$(debian_mirror)" "$SUITE" >"$state/sources.list"
  docker run --rm --network none "$BASE" cat /var/lib/dpkg/status >"$state/status"
  apt=(apt-get -o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=$state/parts"
    -o "Dir::Etc::PreferencesParts=$state/prefs" -o "Dir::State::Lists=$state/lists"
    -o "Dir::State::status=$state/status" -o "Dir::Cache=$state/cache"
    -o APT::Sandbox::User=root -o Debug::NoLocking=1)
  "${apt[@]}" -qq update >&2
  "${apt[@]}" -qq install -y --download-only --no-install-recommends "$@" >&2
  cp "$state"/cache/archives/*.deb "$dest"/
}

# The build context holds the cached llama-cpp-python wheel, the server extra's dependencies as
# wheels for the base image's Python, and the Debian packages; nothing else.
build_llama() {
  local hash=$1 wheels=$2 ctx pyver
  new_tmpdir
  ctx=$tmpdir
  mkdir "$ctx/wheels" "$ctx/debs"
  cp images/llama/Dockerfile "$ctx"/
  cp "$wheels"/llama_cpp_python-"$LLAMA_VERSION"-*.whl "$ctx/wheels"/
  pyver=$(docker run --rm --network none "$BASE" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  say "pip download: llama-cpp-python[server]==$LLAMA_VERSION for Python $pyver"
  "${PYTHON:-python3}" -m pip download -q --dest "$ctx/wheels" --find-links "$wheels" \
    --only-binary=:all: --python-version "$pyver" "llama-cpp-python[server]==$LLAMA_VERSION" >&2
  say "apt download: python3-venv libgomp1"
  fetch_debs "$ctx/debs" python3-venv libgomp1
  docker build -q --network none --label "$LABEL=$hash" --build-arg "LLAMA_VERSION=$LLAMA_VERSION" \
    -t "$LLAMA" "$ctx" >/dev/null
}

# Build $1 with $2 (a function) unless it is current; $3 is the recipe hash.
ensure() {
  local tag=$1 builder=$2 hash=$3 start
  shift 3
  if is_current "$tag" "$hash"; then
    report "$tag" "up to date"
    return
  fi
  start=$SECONDS
  say "building $tag"
  "$builder" "$hash" "$@"
  report "$tag" "built in $((SECONDS - start)) s"
}

main() {
  if [ "${1:-}" = "--vllm" ]; then
    local tag
    tag=$(sed -n 's|^FROM vllm/vllm-openai:\([^@ ]*\).*|\1|p' images/vllm/Dockerfile)
    say "images/vllm/Dockerfile is not built here: it is FROM vllm/vllm-openai:$tag, so it is"
    say "built on a GPU host that can reach Docker Hub (see images/README.md):"
    say "  docker build -t localhost/sandbox-vllm:$tag images/vllm"
    exit 0
  fi
  [ $# -eq 0 ] || die "unknown argument '$1' (known: --vllm)."
  docker info >/dev/null 2>&1 || die "no Docker daemon answers: start it, or check \`docker info\`."
  local base_hash sink_hash llama_hash wheels
  base_hash=$({ declare -f build_base; echo "$SUITE $BASE_PACKAGES"; } | sha)
  ensure "$BASE" build_base "$base_hash"
  sink_hash=$({ echo "$base_hash"; cat images/sink/Dockerfile; declare -f build_sink; } | sha)
  ensure "$SINK" build_sink "$sink_hash"
  wheels=$(PYTHON="${PYTHON:-python3}" bash scripts/llama-wheel.sh)
  llama_hash=$({
    echo "$base_hash $LLAMA_VERSION"
    cat images/llama/Dockerfile
    declare -f build_llama fetch_debs
    sha256sum "$wheels"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | cut -d' ' -f1
  } | sha)
  ensure "$LLAMA" build_llama "$llama_hash" "$wheels"
  # Untagged images with our label: build stages (they inherit the base's label) and images a
  # rebuild replaced.
  docker image prune -f --filter "label=$LABEL" >/dev/null
}

main "$@"
