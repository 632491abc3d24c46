#!/bin/sh
# The image's entry point: Snakemake on the image's workflow (/opt/cohortflow/Snakefile), run in
# the current folder (/work: mount your project there). Arguments go to Snakemake; the default
# is --cores all. A folder without config/config.yaml (and no --configfile given) gets the
# built-in demo cohort's config/ copied in first, so an empty folder runs the demo.
set -eu
case " $* " in
*" --configfile "* | *" --configfiles "* | *" --version "* | *" --help "* | *" -h "*) ;;
*)
  if [ ! -e config/config.yaml ]; then
    echo "cohortflow: no config/config.yaml in $(pwd): copying the demo cohort's config/ here" >&2
    mkdir -p config
    cp -n /opt/cohortflow/config/config.yaml /opt/cohortflow/config/samples.tsv config/
  fi
  ;;
esac
exec snakemake --snakefile /opt/cohortflow/Snakefile "$@"
