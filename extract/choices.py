"""The vocabularies of read-outs, poolings and ablation modes, shared by the library and the CLI.

Kept free of heavy imports so that `emolake --help` does not load torch.
"""

READOUTS = ("probe", "verbalizer", "soft-prompt")
POOLINGS = ("mean", "cls", "last")
MODES = ("zero", "mean", "scale", "noise")  # ablation edits: set to 0, to a reference mean, scale, add noise
DEVICES = ("auto", "cpu", "cuda")  # auto: a CUDA GPU when present, else the CPU (every command's default)
DEVICE_HELP = "Device: auto (a CUDA GPU when present, else the CPU), cpu or cuda."
STORES = ("vectors", "profiles")  # extract --store: every stimulus's vectors (default) or emotion-profile sums
