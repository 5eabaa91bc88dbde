"""Reward functions for the GRPO command-line tests: they vary on a random model's output, so updates happen."""


def vowel_share(prompts, completions, **columns):
    "Share of vowels among a completion's letters."
    out = []
    for c in completions:
        letters = [ch for ch in c.lower() if ch.isalpha()]
        out.append(sum(ch in 'aeiou' for ch in letters) / max(len(letters), 1))
    return out


def broken(prompts, completions, kind, **columns):
    "Fails on any question that is not about colour."
    return [{'color': 1.0}[k] for k in kind]
