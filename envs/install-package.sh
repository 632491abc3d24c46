#!/usr/bin/env bash
# Installs the cohortflow package from the checkout into the active conda env. Snakemake runs
# it through envs/<group>.post-deploy.sh right after creating each env
# (--software-deployment-method conda); the workflow sets COHORTFLOW_SOURCE to its checkout
# (workflow/rules/common.smk).
#
# --no-deps: the env's own yaml pins every dependency of its tool group, so an env holds its
#   group only (the plink env gets no torch). Editable (-e): the env follows the checkout's
#   code, so a code change needs no env rebuild; the install records the checkout path.
set -euo pipefail
source_dir="${COHORTFLOW_SOURCE:?set by the workflow (workflow/rules/common.smk); export it to the cohortflow checkout when running this by hand}"
if [ ! -f "$source_dir/pyproject.toml" ]; then
  echo "cohortflow: COHORTFLOW_SOURCE=$source_dir holds no pyproject.toml (not a cohortflow checkout)" >&2
  exit 1
fi
python -m pip install --no-deps --no-input --quiet --disable-pip-version-check -e "$source_dir"
python -c "import sys, cohortflow; print('cohortflow', cohortflow.__version__, 'installed in', sys.prefix)"
