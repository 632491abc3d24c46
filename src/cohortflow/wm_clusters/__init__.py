"""White-matter clustering (HeteroMRI step C): WM prior x image, RFCM, cluster pick.

Entry points (what the workflow's script shims call): see ``__all__``.
"""

from cohortflow.lazy import entry_points

__getattr__, __all__ = entry_points(
    __name__,
    {
        "ClusterSettings": "cohortflow.wm_clusters.clusters",
        "run_wm_clusters": "cohortflow.wm_clusters.run",
    },
)
