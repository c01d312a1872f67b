"""Word timings by forced alignment with libctc (numpy only).

A CTC acoustic model gives, for every 20 ms frame, log-probabilities over a character
vocabulary. Forced alignment finds the most probable way the known transcript is spoken over
those frames; each word's first and last frames give its start and end in seconds.

The "model output" here is synthetic: a known frame-by-frame character sequence (with silence,
blanks and characters held for a few frames) turned into log-probabilities with noise, so that
the printed timings can be compared with the truth (in brackets).

    PYTHONPATH=bindings/python python examples/align_words.py ["some transcript"]

(after `cargo build`, or with the package installed: `pip install ./bindings/python`).
"""

import sys

import numpy as np

import libctc

FRAME_SECONDS = 0.020  # one frame per 20 ms of audio, as wav2vec2 and MMS models emit
VOCABULARY = ["<blank>", "|"] + list("abcdefghijklmnopqrstuvwxyz'")  # '|' separates words
BLANK, SEPARATOR = 0, 1
INDEX = {c: i for i, c in enumerate(VOCABULARY)}


def normalize(transcript):
    """The transcript's words in lower case, without characters outside the vocabulary."""
    words = ("".join(c for c in w if c in INDEX) for w in transcript.lower().split())
    return [w for w in words if w]


def encode(words):
    """The labels of `words`: their characters, with '|' between words."""
    return [INDEX[c] for c in "|".join(words)]


def synthetic_log_probs(labels, rng):
    """(T, C) float32 log-probabilities peaked on a made-up true path, and that path: silence,
    then each label held 1 to 4 frames followed by 0 to 2 blank frames (at least one before a
    repeated label, which CTC needs), then silence."""
    path = [BLANK] * int(rng.integers(5, 15))
    for i, label in enumerate(labels):
        path += [label] * int(rng.integers(1, 5))
        repeat_next = i + 1 < len(labels) and labels[i + 1] == label
        path += [BLANK] * int(rng.integers(1 if repeat_next else 0, 3))
    path += [BLANK] * int(rng.integers(5, 15))
    logits = rng.normal(0.0, 1.5, size=(len(path), len(VOCABULARY)))
    logits[np.arange(len(path)), path] += 6.0
    log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    return log_probs.astype(np.float32), np.array(path)


def label_runs(path, blank=BLANK):
    """(start, end) frames (end exclusive) of each run of one non-blank label in `path`. For a
    forced alignment the runs are the transcript's labels, in order, one run each."""
    change = np.flatnonzero(np.diff(path, prepend=-1, append=-1))
    return [(int(s), int(e)) for s, e in zip(change[:-1], change[1:]) if path[s] not in (blank, -1)]


def word_frames(labels, runs):
    """(start, end) frames of each word: from its first label's run to its last label's."""
    words, first = [], 0
    for i, label in enumerate(labels + [SEPARATOR]):
        if label == SEPARATOR:
            if i > first:
                words.append((runs[first][0], runs[i - 1][1]))
            first = i + 1
    return words


def main(transcript):
    """Aligns `transcript` to synthetic model output and prints each word's timing."""
    words = normalize(transcript)
    labels = encode(words)
    log_probs, true_path = synthetic_log_probs(labels, np.random.default_rng(0))
    path, score = libctc.align(log_probs, labels, len(log_probs), len(labels), blank=BLANK)
    found = word_frames(labels, label_runs(path))
    truth = word_frames(labels, label_runs(true_path))
    print(f"{len(log_probs)} frames of {FRAME_SECONDS * 1000:.0f} ms, path log-probability {score:.2f}")
    print(f"{'word':<16} {'start s':>8} {'end s':>8}   [true start - end]")
    for word, (start, end), (t0, t1) in zip(words, found, truth):
        print(
            f"{word:<16} {start * FRAME_SECONDS:8.2f} {end * FRAME_SECONDS:8.2f}   "
            f"[{t0 * FRAME_SECONDS:.2f} - {t1 * FRAME_SECONDS:.2f}]"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "the quick brown fox jumps over the lazy dog")
