#!/usr/bin/env bash
# The Debian packages a make target needs, installed as root when they are missing.
#   test: chromium, chromium-driver, prometheus, prometheus-alertmanager, redis-server: required;
#         otherwise say what to install and fail.
#   demo: prometheus (the pool history), prometheus-alertmanager (alert routing and silences):
#         wanted; otherwise say how to add them and carry on.
set -euo pipefail
case "${1:-}" in
  test) wanted=(chromium:chromium chromedriver:chromium-driver prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager redis-server:redis-server); required=1 ;;
  demo) wanted=(prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager); required=0 ;;
  *) echo "usage: $0 test|demo" >&2; exit 2 ;;
esac
target=$1
missing=()
for entry in "${wanted[@]}"; do  # command:package
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "make $target: installing ${missing[*]} from Debian packages..."
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    # The package starts no service here; the tests and the demo start their own server.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus prometheus-alertmanager redis-server >/dev/null 2>&1 || true; fi
    echo "make $target: installed ${missing[*]}."
    exit 0
  fi
  echo "make $target: could not install ${missing[*]}." >&2
  [ "$required" -eq 1 ] && exit 1
  echo "make $target: carrying on without it: no pool history, alerts stay in the app." >&2
  exit 0
fi
if [ "$required" -eq 1 ]; then
  echo "The test suite needs: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "make $target: no ${missing[*]} here, so the Pools page will show no pool history (prometheus) and alerts stay in the app (prometheus-alertmanager)." >&2
echo "To add them: sudo apt-get install ${missing[*]} (or run make $target as root)." >&2
