"""FHIR R4 export following the MII imaging module (Bildgebung), with validation and upload."""
