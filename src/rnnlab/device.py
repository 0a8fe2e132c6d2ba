"""Device choice in one place: `--device auto` means CUDA when present, else CPU."""

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """Turn 'auto' | 'cpu' | 'cuda' | 'cuda:N' into a torch.device, refusing CUDA when absent."""
    from rnnlab.errors import RnnlabError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RnnlabError(f"--device {name} asked for CUDA, but torch sees no CUDA device here")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise RnnlabError(f"unknown device {name!r}: use auto, cpu or cuda[:N]") from err
