"""Data sets: the embedded digits, MNIST and Fashion-MNIST from IDX files (:mod:`.datasets`), and their
checked downloads (:mod:`.download`)."""
