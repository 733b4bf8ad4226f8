# Headless Chromium and its driver from Debian, for tests/e2e/test_serve_browser.py (envdeck serve
# in a real browser); selenium (a test extra, 50-venv.sh) drives them with no browser download.
BROWSER_PKGS=(chromium chromium-driver fonts-dejavu-core)
browser_missing=()
for p in "${BROWSER_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    browser_missing+=("$p")
done
if [ ${#browser_missing[@]} -gt 0 ]; then
  log "installing: ${browser_missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${browser_missing[@]}" >/dev/null
fi
