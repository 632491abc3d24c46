"""cohortflow: cohort MRI and genotype pipeline (package behind the Snakemake workflow)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cohortflow")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
