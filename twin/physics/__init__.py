"""Pure, vectorised physics: numpy arrays in, numpy arrays out, SI units in every name."""
