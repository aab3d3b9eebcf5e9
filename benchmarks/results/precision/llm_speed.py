# OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/results/precision/llm_speed.py 2044 > llm_speed.txt
import time, torch, sys
from tsforecast.llm.backbone import load_backbone, DEFAULT_LLM
torch.manual_seed(0)
bb = load_backbone(DEFAULT_LLM, llm_layers=4)
body = bb.body.eval()
n = int(sys.argv[1]) if len(sys.argv) > 1 else 2044
x = torch.randn(n, 3, bb.hidden_size)
def fwd(bf16, grad):
    xx = x.clone().requires_grad_(grad)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    with ctx:
        out = body(inputs_embeds=xx).last_hidden_state
    if grad:
        out.float().pow(2).mean().backward()
for grad in (False, True):
    times = {False: [], True: []}
    for rep in range(3):
        for bf16 in (False, True):
            t = time.perf_counter()
            with torch.set_grad_enabled(grad):
                fwd(bf16, grad)
            times[bf16].append(time.perf_counter() - t)
    print(f"{'fwd+bwd' if grad else 'fwd'} n={n}x3 tokens, 4 blocks, threads {torch.get_num_threads()}: "
          f"fp32 min {min(times[False]):.2f}s bf16 min {min(times[True]):.2f}s ratio {min(times[False])/min(times[True]):.2f}", flush=True)
