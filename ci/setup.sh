# Sourced by the ci/ scripts so that each works on a fresh Debian or Ubuntu machine:
#   ensure_apt PACKAGE...   installs the Debian packages that are missing (services not started)
#   ensure_venv EXTRAS      builds .venv (or $MENDERSIM_VENV) with mendersim[EXTRAS] installed,
#                           runtime dependencies at the versions locked in requirements.txt
#   ensure_npm_tool PKG@V   installs an npm package into .tools/ (no global install)

ensure_apt() {
  local missing=() pkg sudo="" policy=/usr/sbin/policy-rc.d created_policy=""
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}" >&2
  # policy-rc.d answering 101 keeps packaged services (influxdb) from starting on install.
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    created_policy=1
  fi
  # Another apt run (a parallel set-up) holds the lock for a while: wait for it, do not fail.
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends \
    "${missing[@]}" >/dev/null
  [ -z "$created_policy" ] || $sudo rm -f "$policy"
}

ensure_venv() {
  VENV="${MENDERSIM_VENV:-.venv}"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  fi
  "$VENV/bin/python" -m pip install -q -c requirements.txt -e ".[$1]"
}

ensure_npm_tool() {
  local name="${1%@*}"
  [ -f ".tools/node_modules/$name/package.json" ] \
    && grep -q "\"version\": \"${1##*@}\"" ".tools/node_modules/$name/package.json" && return 0
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --silent "$1" >/dev/null
}

# ensure_mender_specs   puts Mender's OpenAPI specs (third-party files, not in the repository) into
#                       .cache/mender-specs/: copied from ../shared/mender/specs when it is beside
#                       the checkout, else downloaded from GitHub at the commits pinned in
#                       ci/mender-specs.sha256; every file is checked against its sha256.
#                       MENDERSIM_SPECS_URL replaces the download's base URL (a mirror laid out
#                       like raw.githubusercontent.com/mendersoftware: <repo>/<commit>/<path>).
ensure_mender_specs() {
  local dest=.cache/mender-specs shared=../shared/mender/specs sum name path
  local base="${MENDERSIM_SPECS_URL:-https://raw.githubusercontent.com/mendersoftware}"
  mkdir -p "$dest"
  [ -d "$shared" ] || command -v curl >/dev/null || ensure_apt curl
  while read -r sum name path; do
    case "$sum" in ''|'#'*) continue ;; esac
    if ! echo "$sum  $dest/$name" | sha256sum -c --status 2>/dev/null; then
      if [ -f "$shared/$name" ]; then
        cp "$shared/$name" "$dest/$name.part"
      else
        curl -fsSL --retry 3 -o "$dest/$name.part" \
          "${base%/}/$path" \
          || { echo "cannot download $path" >&2; return 1; }
      fi
      echo "$sum  $dest/$name.part" | sha256sum -c --status \
        || { rm -f "$dest/$name.part"
             echo "$name: sha256 does not match ci/mender-specs.sha256" >&2; return 1; }
      mv "$dest/$name.part" "$dest/$name"
    fi
  done < ci/mender-specs.sha256
}
