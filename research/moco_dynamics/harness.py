"""Research harness: MoCo-v2 dynamics on the phantom / digits with monitors. One thread.

Uses the kit's MoCo, info_nce, TwoViewAugment and AnatomyPairs unchanged; only the loop is ours, so
that we can switch symmetric loss, wd groups, schedules, and add monitors:

  train loss/acc/pos/neg   epoch means (as the kit logs them)
  val_acc                  kit's engine.evaluate: val queries vs the (stale) training queue, chance 1/(K+1)
  fresh_acc                val q_i vs current-teacher keys of all val images (no stale keys), chance 1/Nval
                           (same split-BN computation as training)
  ret                      patient-ID retrieval on held-out phantoms: backbone features (eval BN) of view1
                           -> nearest view2 among Nval (paper augmentation views), chance 1/Nval
  lm_err                   kNN (k=5, cosine) landmark regression on un-augmented probe phantoms, px @128
  knn                      digits only: kNN (k=20) digit accuracy, backbone features of clean images
  eff_rank                 exp(entropy) of the singular values of the val projection embeddings
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

torch.set_num_threads(1)

from edenkit.decomposer import AnatomyPairs  # noqa: E402
from edenkit.augmentation import TwoViewAugment  # noqa: E402
from edenkit.pruner import info_nce  # noqa: E402
from edenkit.moco import MoCo  # noqa: E402

from edenkit import engine  # noqa: E402
from edenkit.pretrain_data import ImageTensor, phantom_images  # noqa: E402
from edenkit.pretrain_config import autocast_dtype  # noqa: E402

# bf16 autocast only where the CPU has native bf16 (it is ~10x slower than fp32 on an AVX2-only CPU)
CPU = torch.device("cpu")
AMP = autocast_dtype("auto", CPU)

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"


# ------------------------------------------------------------------------------------------ data
def probe_set(n=512, size=128, seed=777):
    """Un-augmented phantoms with landmarks (x, y) for the landmark kNN probe; cached."""
    path = CACHE / f"probe_{n}x{size}_seed{seed}.pt"
    if path.is_file():
        return torch.load(path)
    from edenkit.phantom import PhantomDataset

    ds = PhantomDataset(n, size=size, seed=seed)
    imgs, lms, labels = [], [], []
    for i in range(n):
        it = ds[i]
        imgs.append((it["image"].clamp(0, 1) * 255).round().to(torch.uint8))
        lms.append(it["landmarks"])
        labels.append(it["labels"])
    out = {"images": torch.stack(imgs), "landmarks": torch.stack(lms), "labels": torch.stack(labels)}
    CACHE.mkdir(exist_ok=True)
    torch.save(out, path)
    return out


def digits_images(size=32):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    x, y = x[perm], torch.tensor(d.target)[perm]
    return (x * 255).round().to(torch.uint8), y


def pairs_loader(images_u8, args, seed, train, batch=None):
    aug = TwoViewAugment(args.view, scale=tuple(args.crop), degrees=args.rot,  # jitter/blur p: the paper's unless set
                         jitter_p=getattr(args, "jitter_p", 0.8), blur_p=getattr(args, "blur_p", 0.5))
    pairs = AnatomyPairs(ImageTensor(images_u8), 0, args.view, seed=seed, augment=aug)
    g = torch.Generator().manual_seed(seed)
    return pairs, DataLoader(pairs, batch_size=batch or args.batch, shuffle=train, drop_last=True,
                             num_workers=0, generator=g)


# ------------------------------------------------------------------------------------------ monitors
def backbone_feats(model, x_u8_or_f, view, bs=256):
    enc = model.encoder_q.backbone
    was = enc.training
    enc.eval()
    out = []
    with torch.no_grad(), engine.autocast(CPU, AMP):
        for i in range(0, len(x_u8_or_f), bs):
            x = x_u8_or_f[i:i + bs]
            x = x.float() / 255.0 if x.dtype == torch.uint8 else x
            if x.shape[-1] != view:
                x = F.interpolate(x, size=(view, view), mode="bilinear", antialias=True, align_corners=False)
            out.append(enc(x.contiguous(memory_format=torch.channels_last)).float())
    enc.train(was)
    return F.normalize(torch.cat(out), dim=1)


def knn_regress(train_f, train_y, test_f, test_y, k=5):
    sim = test_f @ train_f.T
    idx = sim.topk(k, dim=1).indices
    pred = train_y[idx].mean(1)
    return (pred - test_y).norm(dim=-1).mean().item()


def knn_classify(train_f, train_y, test_f, test_y, k=20, t=0.1, classes=10):
    sim = test_f @ train_f.T
    w, idx = sim.topk(k, dim=1)
    w = (w / t).exp()
    votes = torch.zeros(len(test_f), classes).scatter_add_(1, train_y[idx], w)
    return (votes.argmax(1) == test_y).float().mean().item()


@torch.no_grad()
def monitors(model, args, ctx):
    m = {}
    model_was = model.training
    # kit's validation: val pairs vs the stale training queue
    if ctx.get("val_loader") is not None:
        v = engine.evaluate(model, ctx["val_loader"], device=torch.device("cpu"), autocast_dtype=AMP,
                            channels_last=True)
        m["val_loss"], m["val_acc"] = v["loss"], v["acc"]
        # same, after one virtual EMA step (as training does before its keys): the positive is then
        # one teacher step newer than every queue key, exactly like in a training step
        import copy as _copy
        mm = _copy.deepcopy(model)
        mm.momentum_update()
        v = engine.evaluate(mm, ctx["val_loader"], device=torch.device("cpu"), autocast_dtype=AMP,
                            channels_last=True)
        m["val_acc_ema"] = v["acc"]
        del mm
        # fresh keys: val q_i against current-teacher keys of all val images
        qs, ks = [], []
        with engine.autocast(CPU, AMP):
            for b in ctx["val_loader"]:
                q, k = model.embed_pair(b["view1"].contiguous(memory_format=torch.channels_last),
                                        b["view2"].contiguous(memory_format=torch.channels_last))
                qs.append(q)
                ks.append(k)
        q, k = torch.cat(qs), torch.cat(ks)
        m["fresh_acc"] = ((q @ k.T).argmax(1) == torch.arange(len(q))).float().mean().item()
        s = torch.linalg.svdvals(q - 0 * q.mean(0))
        p = s / s.sum()
        m["eff_rank"] = math.exp(-(p * p.clamp_min(1e-12).log()).sum().item())
        # patient / instance retrieval with backbone features (eval BN)
        f1 = backbone_feats(model, ctx["ret_v1"], args.view)
        f2 = backbone_feats(model, ctx["ret_v2"], args.view)
        m["ret"] = ((f1 @ f2.T).argmax(1) == torch.arange(len(f1))).float().mean().item()
    if "probe" in ctx:
        pr = ctx["probe"]
        f = backbone_feats(model, pr["images"], args.view)
        y = pr["landmarks"].reshape(len(f), -1, 2)
        n = len(f) * 3 // 4
        m["lm_err"] = knn_regress(f[:n], y[:n], f[n:], y[n:])
    if "digits" in ctx:
        x, y, n = ctx["digits"]
        f = backbone_feats(model, x, args.view)
        m["knn"] = knn_classify(f[:n], y[:n], f[n:], y[n:])
    model.train(model_was)
    return m


# ------------------------------------------------------------------------------------------ train
def param_groups(model, wd, exclude_bn_bias):
    if not exclude_bn_bias:
        return [{"params": list(model.encoder_q.parameters()), "weight_decay": wd}]
    decay, no = [], []
    for name, p in model.encoder_q.named_parameters():
        (no if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no, "weight_decay": 0.0}]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--data", default="phantom", choices=["phantom", "digits"])
    ap.add_argument("--ntrain", type=int, default=1536)
    ap.add_argument("--nval", type=int, default=256)
    ap.add_argument("--image", type=int, default=128)
    ap.add_argument("--view", type=int, default=64)
    ap.add_argument("--crop", type=float, nargs=2, default=[0.2, 1.0])
    ap.add_argument("--rot", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--lr", type=float, default=0.00375, help="actual lr (no scaling)")
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--wd-exclude", action="store_true", help="no weight decay on BN and biases")
    ap.add_argument("--m", type=float, default=0.99)
    ap.add_argument("--K", type=int, default=1024)
    ap.add_argument("--T", type=float, default=0.2)
    ap.add_argument("--splits", type=int, default=2)
    ap.add_argument("--symmetric", action="store_true")
    ap.add_argument("--warmup", type=int, default=0, help="linear warm-up epochs")
    ap.add_argument("--const-lr", action="store_true")
    ap.add_argument("--mlp", type=int, default=1, help="1: MoCo-v2 MLP head (kit); 0: linear fc head")
    ap.add_argument("--head-bn", action="store_true")
    ap.add_argument("--mild-epochs", type=int, default=0, help="first E epochs with crop [1,1], rotation 5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mon-every", type=int, default=1)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    ctx = {}
    if args.data == "phantom":
        train_u8 = phantom_images(args.ntrain, args.image, 1000, str(CACHE))
        val_u8 = phantom_images(args.nval, args.image, 1001, str(CACHE))
        ctx["probe"] = probe_set()
    else:
        x, y = digits_images(args.image)
        ntr = 1297
        train_u8, val_u8 = x[:ntr], x[ntr:ntr + args.nval]
        ctx["digits"] = (x, y, ntr)
    _, train_loader = pairs_loader(train_u8, args, seed=args.seed, train=True)
    val_pairs, val_loader = pairs_loader(val_u8, args, seed=args.seed + 1_000_003, train=False)
    ctx["val_loader"] = val_loader
    items = [val_pairs[i] for i in range(len(val_pairs))]
    ctx["ret_v1"] = torch.stack([it["view1"] for it in items])
    ctx["ret_v2"] = torch.stack([it["view2"] for it in items])

    model = MoCo("resnet18", 128, args.K, args.m, args.T, None, args.splits)
    if not args.mlp:
        model.encoder_q.head = torch.nn.Linear(512, 128)
        model.encoder_k.head = torch.nn.Linear(512, 128)
        model.encoder_k.head.load_state_dict(model.encoder_q.head.state_dict())
        for p in model.encoder_k.parameters():
            p.requires_grad = False
    if args.head_bn:  # MoCo-v3-style head: BN after the hidden layer and a non-affine BN on the output
        from torch import nn
        head = nn.Sequential(nn.Linear(512, 512, bias=False), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
                             nn.Linear(512, 128, bias=False), nn.BatchNorm1d(128, affine=False))
        model.encoder_q.head = head
        import copy as _copy
        model.encoder_k.head = _copy.deepcopy(head)
        for p in model.encoder_k.parameters():
            p.requires_grad = False
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(param_groups(model, args.wd, args.wd_exclude), lr=args.lr, momentum=0.9)
    steps_per_epoch = len(train_loader)
    total = steps_per_epoch * args.epochs

    def lr_at(step):
        if args.warmup and step < args.warmup * steps_per_epoch:
            return args.lr * (step + 1) / (args.warmup * steps_per_epoch)
        if args.const_lr:
            return args.lr
        e = step / steps_per_epoch  # per-epoch cosine like the kit (CosineAnnealingLR stepped per epoch)
        return args.lr * 0.5 * (1 + math.cos(math.pi * math.floor(e) / args.epochs))

    out = HERE / "runs" / args.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "args.json").write_text(json.dumps(vars(args)))
    logf = (out / "log.jsonl").open("w")
    rec = {"epoch": 0, **monitors(model, args, ctx)}
    logf.write(json.dumps(rec) + "\n")
    logf.flush()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rec.items()}), flush=True)
    step = 0
    for epoch in range(1, args.epochs + 1):
        train_loader.dataset.set_epoch(epoch)
        if args.mild_epochs:
            mild = epoch <= args.mild_epochs
            train_loader.dataset.augment = TwoViewAugment(args.view, scale=(1.0, 1.0) if mild else tuple(args.crop),
                                                          degrees=5.0 if mild else args.rot)
        model.train()
        sums = {"loss": 0.0, "acc": 0.0, "pos_sim": 0.0, "neg_sim": 0.0}
        t0 = time.perf_counter()
        nb = 0
        for b in train_loader:
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            v1 = b["view1"].contiguous(memory_format=torch.channels_last)
            v2 = b["view2"].contiguous(memory_format=torch.channels_last)
            with engine.autocast(CPU, AMP):
                q1, k2 = model(v1, v2)  # EMA update inside, then keys
                if args.symmetric:
                    q2 = model._embed(model.encoder_q, v2)
                    with torch.no_grad():
                        k1 = model._keys(v1)
            loss, st = info_nce(q1, k2, model.queue, tau=args.T)
            if args.symmetric:
                loss2, st2 = info_nce(q2, k1, model.queue, tau=args.T)
                loss = loss + loss2
                st = {k: (st[k] + st2[k]) / 2 for k in st}
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            model.enqueue(torch.cat([k1, k2]) if args.symmetric else k2)
            sums["loss"] += loss.item() / (2 if args.symmetric else 1)
            for k in ("acc", "pos_sim", "neg_sim"):
                sums[k] += float(st[k])
            nb += 1
            step += 1
        sec = time.perf_counter() - t0
        rec = {"epoch": epoch, "lr": lr_at(step - 1), **{k: v / nb for k, v in sums.items()}, "sec": sec}
        if epoch % args.mon_every == 0 or epoch == args.epochs:
            t1 = time.perf_counter()
            rec.update(monitors(model, args, ctx))
            rec["mon_sec"] = time.perf_counter() - t1
        logf.write(json.dumps(rec) + "\n")
        logf.flush()
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rec.items()}), flush=True)


if __name__ == "__main__":
    main()
