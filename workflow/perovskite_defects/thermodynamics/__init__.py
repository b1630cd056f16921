"""Thermodynamics of the defects: band edges, formation energies, levels, concentrations."""
