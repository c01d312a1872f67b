"""``libctc.functional``: drop-ins for ``torch.nn.functional.ctc_loss`` and for
``torchaudio.functional.forced_align`` and ``merge_tokens`` (needs torch, not torchaudio)."""

from ._torch import TokenSpan, ctc_loss, forced_align, merge_tokens

__all__ = ["ctc_loss", "forced_align", "merge_tokens", "TokenSpan"]
