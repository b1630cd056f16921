"""Stage 1: host supercells (any A, X and Sn/Pb ratio) and competing-phase structures."""
