#!/usr/bin/env bash
# Snakemake runs this once inside the new env after creating envs/plink.yaml: it installs the
# cohortflow package that the rule scripts import (see install-package.sh beside it).
exec bash "${COHORTFLOW_SOURCE:?set by the workflow (workflow/rules/common.smk)}/envs/install-package.sh"
