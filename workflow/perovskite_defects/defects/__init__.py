"""Stage 2: defect sets (site classes, charge rules), defect supercells and the manifest."""
