"""``libctc.functional.ctc_loss``: drop-in for ``torch.nn.functional.ctc_loss`` (needs torch)."""

from ._torch import ctc_loss

__all__ = ["ctc_loss"]
