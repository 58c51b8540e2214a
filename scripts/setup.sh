#!/usr/bin/env bash
# Sets up a fresh machine for gensep: Debian packages the Python stack needs,
# then a virtualenv with gensep installed in editable mode.
# Usage: scripts/setup.sh [VENV_DIR] [EXTRAS]     (defaults: .venv test)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
extras=${2:-test}

# Debian packages: ffmpeg is needed by `import musdb` / `import museval`
# (through stempeg), even for WAV datasets; fluidsynth renders MIDI with sampled
# instruments, from two General MIDI soundfonts (FluidR3 for training sets, TimGM6mb
# for test sets, so test scores measure generalisation to other samples).
deb_packages=(ffmpeg fluidsynth fluid-soundfont-gm timgm6mb-soundfont)
missing=()
for pkg in "${deb_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: please install these system packages: ${missing[*]} (no apt-get here)" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating virtualenv $venv"
  "$python" -m venv "$venv"
fi
stamp="$venv/.gensep-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing gensep[$extras] into $venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi
