import json
import sys

cols = ["epoch", "lr", "loss", "acc", "pos_sim", "neg_sim", "val_acc", "val_acc_ema", "fresh_acc", "ret", "knn", "lm_err", "eff_rank", "sec"]
for name in sys.argv[1:]:
    recs = [json.loads(l) for l in open(f"runs/{name}/log.jsonl")]
    present = [c for c in cols if any(c in r for r in recs)]
    print(f"\n{name}\n| " + " | ".join(present) + " |\n|" + "---|" * len(present))
    for r in recs:
        row = []
        for c in present:
            v = r.get(c, "")
            row.append(f"{v:.4f}" if c == "lr" and v != "" else f"{v:.3f}" if isinstance(v, float) and c not in ("sec", "eff_rank") else f"{v:.0f}" if isinstance(v, float) else str(v))
        print("| " + " | ".join(row) + " |")
