"""Markdown tables of /tmp/research-recipe/runs/<name>/log.jsonl (or runs/<name>/ here): python table.py NAME..."""
import json
import sys
from pathlib import Path

COLS = ["epoch", "lr", "loss", "acc", "pos_sim", "neg_sim", "val_acc", "val_acc_ema", "fresh_acc", "ret", "lm_err",
        "eff_rank", "sec"]
for name in sys.argv[1:]:
    path = next(p for p in (Path("/tmp/research-recipe/runs") / name / "log.jsonl",
                            Path(__file__).parent / "runs" / name / "log.jsonl") if p.is_file())
    recs = [json.loads(line) for line in path.open()]
    cols = [c for c in COLS if any(c in r for r in recs)]
    print(f"\n{name}\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in recs:
        cells = []
        for c in cols:
            v = r.get(c, "")
            if v == "":
                cells.append("")
            elif c == "lr":
                cells.append(f"{v:.5f}")
            elif c in ("sec", "eff_rank"):
                cells.append(f"{v:.0f}")
            elif isinstance(v, float):
                cells.append(f"{v:.3f}")
            else:
                cells.append(str(v))
        print("| " + " | ".join(cells) + " |")
