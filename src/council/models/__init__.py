"""Models: the GGUF catalog of the data folder and the generated demo model."""
