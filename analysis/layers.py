"""Per-layer model RDMs: the RDM of each layer's neurons alone, beside the all-neuron RDM.

"Which layer is most human-like?" is answered by comparing every layer's RDM with the human RDM
(`rsa.run_rsa` stores those rows in `layer_rsa_results`; `model_rsa` lists them with `layer`
set, NULL being all neurons). The RDMs come from the one RDM function, `rdm.model_rdm`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .lake_inputs import Profiles
from .rdm import model_rdm


def layer_model_rdms(profiles: Profiles, metric: str = "correlation") -> Iterator[tuple[int, int, np.ndarray]]:
    """(layer, n_neurons, model RDM [n_pairs] of that layer's neurons, averaged over runs) per layer, in order."""
    for layer in np.unique(profiles.layers):
        columns = profiles.layers == layer  # [n_neurons] bool
        yield int(layer), int(columns.sum()), model_rdm(profiles.values[:, :, columns], metric)
