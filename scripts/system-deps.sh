#!/usr/bin/env bash
# Install the Debian packages the test suite and the builds need, when they are missing.
# Needs root (or sudo); prints what to install otherwise. Safe to run again.
set -euo pipefail
packages=(postgresql cmake build-essential dcmtk poppler-utils pngcheck iproute2 iptables util-linux chromium bubblewrap libseccomp2)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo="sudo"
  else
    echo "Missing Debian packages: ${missing[*]}. Install them: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
echo "Installing Debian packages: ${missing[*]}" >&2
${sudo:-} apt-get update -qq
DEBIAN_FRONTEND=noninteractive ${sudo:-} apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
