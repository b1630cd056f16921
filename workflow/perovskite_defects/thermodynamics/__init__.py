"""Stage 5: chemical potentials, formation energies and levels, trap classes, band edges,
Fermi level and concentrations."""
