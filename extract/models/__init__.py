"""Model families, loading (folders, hub names, GGUF files, bundled models) and the neuron registry."""
