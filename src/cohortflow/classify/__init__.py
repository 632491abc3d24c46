"""CNN classification of white-matter abnormality (HeteroMRI step D)."""
