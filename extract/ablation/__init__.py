"""Neuron ablation: edits applied through the FFN hooks, and sweeps over attribute and control sets."""
