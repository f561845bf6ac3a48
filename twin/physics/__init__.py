"""Pure, vectorised physics of the twin: numpy arrays in and out, SI units in the names."""
