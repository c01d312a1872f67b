"""A PyTorch training loop with libctc's drop-in for torch.nn.CTCLoss.

The only change to a torch training script is the import: `libctc.CTCLoss` takes the same
arguments and inputs as `torch.nn.CTCLoss` (log-probabilities (T, N, C), padded or concatenated
targets, lengths) and gives the same loss and gradient. Here a small recurrent acoustic model
learns to transcribe synthetic "utterances" (each label held for a few frames of noisy
features); the printed loss falls, and each step's loss and gradient are compared with
torch.nn.CTCLoss on the same batch.

    PYTHONPATH=bindings/python python examples/torch_training_step.py [steps]

(after `cargo build`, or with the package installed: `pip install ./bindings/python`).
"""

import sys

import torch

import libctc

CLASSES = 12  # blank 0 and 11 labels
FEATURES = 16


def batch(generator, n=8, max_frames=60):
    """Features (T, N, F), padded targets (N, S) and the lengths of a random batch."""
    targets, lengths, frames = [], [], []
    for _ in range(n):
        length = int(torch.randint(3, 9, (1,), generator=generator))
        labels = torch.randint(1, CLASSES, (length,), generator=generator)
        holds = torch.randint(2, 6, (length,), generator=generator)
        frames.append(torch.repeat_interleave(labels, holds))
        targets.append(labels)
        lengths.append(length)
    t = max(max(len(f) for f in frames), max_frames // 2)
    codebook = torch.randn(CLASSES, FEATURES, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(t, n, FEATURES)
    for b, f in enumerate(frames):
        x[: len(f), b] = codebook[f] + 0.3 * torch.randn(len(f), FEATURES, generator=generator)
    padded = torch.zeros(n, max(lengths), dtype=torch.long)
    for b, labels in enumerate(targets):
        padded[b, : len(labels)] = labels
    input_lengths = torch.tensor([len(f) for f in frames])
    return x, padded, input_lengths, torch.tensor(lengths)


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(FEATURES, 32, bidirectional=True)
        self.out = torch.nn.Linear(64, CLASSES)

    def forward(self, x):
        return self.out(self.rnn(x)[0]).log_softmax(-1)


def main(steps=30):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    ctc = libctc.CTCLoss(blank=0, reduction="mean", zero_infinity=True)  # was torch.nn.CTCLoss
    reference = torch.nn.CTCLoss(blank=0, reduction="mean", zero_infinity=True)
    worst = 0.0
    first = last = None
    for step in range(steps):
        x, targets, input_lengths, target_lengths = batch(generator)
        log_probs = model(x)
        loss = ctc(log_probs, targets, input_lengths, target_lengths)
        # The same step with torch's loss: same value, same gradient with respect to log_probs.
        lp = log_probs.detach().requires_grad_()
        lp_ref = log_probs.detach().requires_grad_()
        ctc(lp, targets, input_lengths, target_lengths).backward()
        want = reference(lp_ref, targets, input_lengths, target_lengths)
        want.backward()
        worst = max(worst, abs(loss.item() - want.item()), (lp.grad - lp_ref.grad).abs().max().item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
        last = loss.item()
        if step % 10 == 0 or step == steps - 1:
            print(f"step {step:3d}  loss {loss.item():.4f}")
    print(f"loss {first:.4f} -> {last:.4f}; largest difference from torch.nn.CTCLoss: {worst:.2e}")
    return first, last, worst


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
