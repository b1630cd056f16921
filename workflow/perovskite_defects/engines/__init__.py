"""DFT engines behind one record: each module writes inputs, runs, and parses to CalcRecord."""
