"""Bug checks on the kit's MoCo: evaluate leaves state bit-identical; no grad into teacher; queue gets keys;
EMA touches parameters only; split-BN overlap of a key's chunk with its query's chunk."""
import copy

import torch

torch.set_num_threads(1)
from edenkit.pruner import info_nce
from edenkit.moco import MoCo

from edenkit import engine

torch.manual_seed(0)
m = MoCo("resnet18", 128, 64, 0.99, 0.2, None, 2)
x1, x2 = torch.rand(32, 1, 32, 32), torch.rand(32, 1, 32, 32)
# one training step
opt = torch.optim.SGD(m.encoder_q.parameters(), lr=0.1)
q, k = m(x1, x2)
loss, _ = info_nce(q, k, m.queue)
opt.zero_grad(); loss.backward()
print("teacher grads:", sum(p.grad is not None for p in m.encoder_k.parameters()), "k.requires_grad", k.requires_grad)
print("|q|,|k|:", q.norm(dim=1).mean().item(), k.norm(dim=1).mean().item())
opt.step(); m.enqueue(k)
print("queue[0:32]==k:", torch.equal(m.queue[:32], k.float()), "ptr", int(m.queue_ptr))
# evaluate: bit-identical state and RNG
sd = copy.deepcopy(m.state_dict()); rng = torch.get_rng_state()
loader = [{"view1": x1, "view2": x2}]
engine.evaluate(m, loader, device=torch.device("cpu"))
print("evaluate changes state:", any(not torch.equal(sd[k_], v) for k_, v in m.state_dict().items()),
      "rng changed:", not torch.equal(rng, torch.get_rng_state()))
# embed_pair == training forward up to the EMA update (momentum=1 to freeze teacher)
m.momentum = 1.0
torch.manual_seed(5); qa, ka = m.embed_pair(x1, x2)
torch.manual_seed(5); m.train(); qb, kb = m(x1, x2)
print("embed_pair == train forward (m=1):", (qa - qb).abs().max().item(), (ka - kb).abs().max().item())
# positive index: logits column 0
# split-BN overlap: fraction of k_i's chunk members (excluding i) that are in q_i's chunk
B, G = 32, 2
ov = []
for _ in range(2000):
    perm = torch.randperm(B); pos = torch.empty(B, dtype=torch.long); pos[perm] = torch.arange(B)
    kchunk = pos // (B // G); qchunk = torch.arange(B) // (B // G)
    for i in range(B):
        members = perm[kchunk[i] * (B // G):(kchunk[i] + 1) * (B // G)]
        others = members[members != i]
        ov.append((others // (B // G) == qchunk[i]).float().mean().item())
print(f"B={B} G={G}: share of k_i's BN chunk (others) drawn from q_i's chunk: {sum(ov)/len(ov):.3f}")
