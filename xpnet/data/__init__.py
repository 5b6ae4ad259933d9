"""Data sets: the embedded digits, MNIST and Fashion-MNIST from IDX files, and their checked downloads
(:mod:`.datasets`)."""
