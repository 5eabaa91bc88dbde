"""What the RL demo's held-out captions name (nbs/artifacts/rl/notes.md): for each evaluation file written by
`python -m cobra_lit.rldemo eval --captions`, CIDEr-D, the share of images whose greedy CAPTION names exactly the
image's shapes (colour and shape, as a multiset), the share whose first named shape is the image's first, and the two
most used caption templates (shapes replaced by X).

    python scripts/caption_objects.py results/rl-demo-warm-c4/{B-start,F-start,F-scst-x1}.json
"""
import argparse, json, re
from collections import Counter, defaultdict
from cobra_lit.data import DEMO_COLOURS, DEMO_SHAPES, stage_caption

PAIR = re.compile(rf"\b({'|'.join(DEMO_COLOURS)}) ({'|'.join(DEMO_SHAPES)})\b")
shapes = lambda text: PAIR.findall(text)
template = lambda cap: re.sub(r'X(, an? X)*( and an? X)?', 'X', PAIR.sub('X', cap))

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('evals', nargs='+', help='evaluation JSON files (ids, greedy, greedy_texts)')
    p.add_argument('--captions', default='data/demo-rl-warm-c4/captions_test.json',
                   help="the held-out COCO-style captions file: an image's shapes are its longest reference's")
    a = p.parse_args()
    refs = defaultdict(list)
    for r in json.load(open(a.captions))['annotations']: refs[r['image_id']].append(r['caption'])
    truth = {i: max((shapes(c) for c in cs), key=len) for i, cs in refs.items()}
    for f in a.evals:
        e = json.load(open(f)); n = len(e['ids']); caps = [stage_caption(t) or '' for t in e['greedy_texts']]
        named = [(shapes(c), truth[i]) for i, c in zip(e['ids'], caps)]
        every = sum(Counter(o) == Counter(t) for o, t in named)
        first = sum(bool(o) and o[0] == t[0] for o, t in named)
        print(f'{f}: CIDEr-D {sum(e["greedy"]) / n:.3f}, every shape {every / n:.3f}, first shape {first / n:.3f}, '
              f'templates {Counter(template(c.strip()) for c in caps).most_common(2)}')

if __name__ == '__main__': main()
