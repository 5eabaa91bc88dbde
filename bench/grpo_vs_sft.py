"""Where the demo's GRPO gain goes: GRPO against more supervised training from the same checkpoint, in one run.

From one supervised demo run (`torchrun -m cobra_lit.train`) this measures, on the demo's held-out split:
1. what the image features hold: a linear probe per question kind on the projector's output (what the LM reads),
   fitted on the training images, scored on the held-out ones;
2. how the LM reads them: teacher-forced p(correct word) at the caption's first answer word (shape, position);
3. how much of a GRPO batch gradient is signal: its cosine with the supervised gradient of the same 24 training
   prompts (count, position, shape), and between two independent samplings of the same 8 prompts;
4. the baseline: `--sft-epochs` more epochs of supervised training (`cobra_lit.train`, lr `--sft-lr`);
5. GRPO: `--grpo-steps` steps of `cobra_lit.grpo` with its defaults;
each run with held-out greedy accuracy per kind (the same 200 records) and its wall time.

  python bench/grpo_vs_sft.py --sft runs/demo+cobra-tiny+stage-full-finetune+x7
"""
import argparse, json, os, platform, subprocess, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F

from cobra_lit.data import (LlavaCotDataset, PaddedCollator, format_prompt, load_tokenizer, open_image,
                            tokenize_conversation)
from cobra_lit.generate import index_pixel_values, pixel_values_for
from cobra_lit.grpo import (GRPOConfig, completion_logps, compute_rewards, group_advantages, grpo_loss,
                            load_reward_funcs, rollout, sample_uniforms)
from cobra_lit.model import load_cobra

KIND_WORDS = {'shape': ('circle', 'square', 'triangle'), 'position': ('left', 'right')}


def features(model, recs, root):
    "Projector outputs (N, P * D) of the records' images."
    out = []
    with torch.no_grad():
        for i in range(0, len(recs), 100):
            pv = pixel_values_for(model, [open_image(root/'images'/r['image']) for r in recs[i:i + 100]])[0]
            out.append(model.project_images(pv).flatten(1).float())
    return torch.cat(out)


def probe(model, train, test, root, steps=300):
    "Held-out accuracy of a linear classifier per kind on the projector outputs (standardised, L2 1e-3, Adam)."
    ftr, fte = features(model, train, root), features(model, test, root)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    res = {}
    for kind in sorted({r['kind'] for r in train}):
        itr, ite = ([i for i, r in enumerate(rs) if r['kind'] == kind] for rs in (train, test))
        labels = sorted({train[i]['answer'] for i in itr})
        y, yt = (torch.tensor([labels.index(rs[i]['answer']) for i in ix]) for rs, ix in ((train, itr), (test, ite)))
        x, xt = (ftr[itr] - mu) / sd, (fte[ite] - mu) / sd
        torch.manual_seed(0)
        w = torch.zeros(x.shape[1], len(labels), requires_grad=True); b = torch.zeros(len(labels), requires_grad=True)
        opt = torch.optim.Adam([w, b], lr=1e-2)
        for _ in range(steps):
            opt.zero_grad(); (F.cross_entropy(x @ w + b, y) + 1e-3 * w.pow(2).sum()).backward(); opt.step()
        res[kind] = float(((xt @ w + b).argmax(1) == yt).float().mean())
    return res


def teacher_forced(model, tok, test, root):
    "Mean p(correct) and argmax accuracy over the kind's words at the caption's first answer word, given the true text."
    res = {}
    for r in (r for r in test if r['kind'] in KIND_WORDS):
        item = tokenize_conversation(r['conversations'], tok)
        ids, labels = torch.as_tensor(item['input_ids'])[None], torch.as_tensor(item['labels'])
        start = int((labels != -100).nonzero()[0])
        words = {w: tok(' ' + w, add_special_tokens=False)['input_ids'][0] for w in KIND_WORDS[r['kind']]}
        pos = next(i for i in range(start, ids.shape[1]) if int(ids[0, i]) == words[r['answer']])
        pv = pixel_values_for(model, [open_image(root/'images'/r['image'])])[0]
        with torch.no_grad(): logits = model(input_ids=ids, pixel_values=pv).logits
        p = torch.softmax(logits[0, logits.shape[1] - ids.shape[1] + pos - 1, list(words.values())].float(), 0)
        k = list(words).index(r['answer'])
        res.setdefault(r['kind'], []).append((float(p[k]), float(p.argmax() == k)))
    return {kind: {'p_correct': sum(v[0] for v in vs) / len(vs), 'argmax_acc': sum(v[1] for v in vs) / len(vs),
                   'chance': 1 / len(KIND_WORDS[kind]), 'n': len(vs)} for kind, vs in res.items()}


def gradient_alignment(model, tok, train, root, n=24, per=8, seeds=(0, 1)):
    """Cosines of GRPO batch gradients (the default rewards, G, loss) with the supervised gradient of the same prompts,
    and between two samplings (different seeds) of the same prompts: how much of one batch's gradient is signal."""
    recs = [r for r in train if r['kind'] in ('count', 'position', 'shape')][:n]
    params = [p for p in model.parameters() if p.requires_grad]
    def grad(loss):
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(gs, params)])
    model.train(); ds, col = LlavaCotDataset(recs, root/'images', tok, model.image_transform), PaddedCollator()
    g_sft = sum(grad(model(**{k: v for k, v in col([ds[j] for j in range(i, min(i + 16, n))]).items()
                              if k != 'attention_mask'}, return_logits=False).loss) for i in range(0, n, 16))
    c = GRPOConfig(); G, T = c.num_generations, c.max_completion_length
    funcs = load_reward_funcs(list(c.rewards))
    def rl_grad(batch, seed):
        imgs = [open_image(root/'images'/r['image']) for r in batch]
        prompts = [format_prompt(r['conversations'][0]['value']) for r in batch]
        model.eval()
        ro = rollout(model, tok, imgs, prompts, G, sample_uniforms(seed, 0, range(len(batch) * G), T), T, c.temperature)
        model.train()
        cols = {'answer': [r['answer'] for r in batch for _ in range(G)], 'truncated': ro.truncated.tolist()}
        reps = [p for p in prompts for _ in range(G)]
        total = compute_rewards(funcs, list(c.reward_weights), reps, ro.texts, cols)[0]
        adv, _ = group_advantages(total.float(), G, c.scale_rewards)
        rows = list(range(len(ro.texts)))
        pv = index_pixel_values(pixel_values_for(model, imgs)[0], torch.tensor(rows) // G)
        lp = completion_logps(model, ro, rows, pv, c.temperature)
        return grad(grpo_loss(lp, lp.detach(), adv, ro.mask, c.epsilon, loss_type=c.loss_type)[0])
    cos = lambda a, b: float(F.cosine_similarity(a, b, 0))
    gs = {(i, s): rl_grad(recs[i:i + per], s) for s in seeds for i in range(0, n, per)}
    model.eval()
    return {'cos_batch_vs_sft': sum(cos(g, g_sft) for g in gs.values()) / len(gs),
            'cos_all_batches_vs_sft': cos(sum(gs.values()), g_sft),
            'cos_two_samplings': sum(cos(gs[i, seeds[0]], gs[i, seeds[1]]) for i in range(0, n, per)) / (n // per),
            'prompts': n, 'prompts_per_batch': per, 'num_generations': G}


def run(module, args, run_dir):
    "Run a cobra_lit command in a fresh process; its summary.json and wall time."
    t = time.perf_counter()
    env = {**os.environ, 'TOKENIZERS_PARALLELISM': 'false'}
    subprocess.run([sys.executable, '-m', module, *args], check=True, env=env)
    s = json.loads((run_dir/'summary.json').read_text())
    return s, time.perf_counter() - t


def by_kind(s):
    return dict(s.get('accuracy_by_kind', {}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sft', required=True, type=Path, help='the supervised demo run folder (runs/<run_id>)')
    ap.add_argument('--sft-epochs', type=int, default=1, help='baseline: more supervised epochs (default 1)')
    ap.add_argument('--sft-lr', type=float, default=1e-3, help='baseline learning rate (warmup + cosine)')
    ap.add_argument('--grpo-steps', type=int, default=90, help='GRPO steps (its default)')
    ap.add_argument('--run-root', type=Path, default=Path('runs/bench'), help='where both runs go (must not hold them)')
    ap.add_argument('--out', type=Path, default=None, help='also write the results here as JSON')
    a = ap.parse_args()
    cfg = json.loads((a.sft/'config.json').read_text())
    root = Path(cfg['dataset']['dataset_root'])
    train, test = (json.loads((root/f).read_text()) for f in ('llava_cot_100k.json', 'test.json'))
    model = load_cobra(a.sft).eval()
    res = {'device': f'CPU {platform.machine()} x {torch.get_num_threads()} threads', 'sft_run': str(a.sft),
           'probe_heldout_acc': probe(model, train, test, root),
           'teacher_forced': teacher_forced(model, load_tokenizer(), test, root)}
    print('linear probe on the projector output, held-out accuracy per kind:', res['probe_heldout_acc'], flush=True)
    print('teacher-forced caption answer word:', res['teacher_forced'], flush=True)
    res['gradient_alignment'] = gradient_alignment(model, load_tokenizer(), train, root)
    print('GRPO batch gradients:', res['gradient_alignment'], flush=True)
    common = ['--pretrained_checkpoint', str(a.sft), '--run_root_dir', str(a.run_root), '--eval_limit', '200']
    more = ['--run_id', 'more-sft', '--model.finetune_epochs', str(a.sft_epochs), '--model.finetune_learning_rate',
            str(a.sft_lr)]
    sft, t_sft = run('cobra_lit.train', common + more, a.run_root/'more-sft')
    grpo, t_grpo = run('cobra_lit.grpo', common + ['--run_id', 'grpo', '--max_steps', str(a.grpo_steps)],
                       a.run_root/'grpo')
    res['before'] = {'accuracy': sft['accuracy_before'], 'by_kind': {k: v['before'] for k, v in
                                                                     grpo['before_after'].items() if k != 'all'}}
    res['more_sft'] = {'epochs': a.sft_epochs, 'lr': a.sft_lr, 'accuracy': sft['accuracy_after'],
                       'by_kind': by_kind(sft), 'wall_s': t_sft}
    res['grpo'] = {'steps': a.grpo_steps, 'accuracy': grpo['accuracy_after'], 'by_kind': by_kind(grpo),
                   'wall_s': t_grpo, 'before_after': grpo['before_after']}
    for name in ('before', 'more_sft', 'grpo'):
        r = res[name]
        kinds = '  '.join(f'{k} {v:.2f}' for k, v in r['by_kind'].items())
        took = f"  ({r['wall_s']:.0f} s)" if 'wall_s' in r else ''
        print(f"{name:>9}: held-out {r['accuracy']:.3f}  {kinds}{took}")
    if a.out: a.out.parent.mkdir(parents=True, exist_ok=True); a.out.write_text(json.dumps(res, indent=2))


if __name__ == '__main__':
    main()
