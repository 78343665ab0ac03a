#!/usr/bin/env bash
# Install the Debian packages the tests drive for real: chromium (browser tests through
# Playwright), slurm-wlm and munge (a single-node Slurm). Needs root; without it, print
# what is missing and let the tests that need it skip with that reason.
set -euo pipefail
wanted=(chromium slurm-wlm munge)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-system-deps: not root or no apt-get; tests needing ${missing[*]} will be skipped" >&2
  exit 0
fi
echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
