"""PyTorch CPU reference timings for `npm run bench` (run by bench/run.ts as a subprocess).

Prints one JSON object: {"torch": version, "threads": n, "results": {case: median_ms}}.
Same cases, same shapes and the same warm-up/median protocol as the TypeScript side.
"""
import json
import sys
import time

import torch


def median_ms(fn, warmup, rounds):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000.0)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    warmup = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    a = torch.rand(512, 512)
    b = torch.rand(512, 512)
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x256 = torch.rand(256, 784)
    x1 = torch.rand(1, 784)
    y = torch.arange(256) % 10

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x256), y)
        loss.backward()
        opt.step()
        return loss.item()

    res = {}
    with torch.no_grad():
        res['matmul'] = median_ms(lambda: a @ b, warmup, rounds)
        res['mlp_fwd_b256'] = median_ms(lambda: net(x256), warmup, rounds)
        res['mlp_fwd_b1'] = median_ms(lambda: net(x1), warmup, rounds)
    res['mlp_train_b256'] = median_ms(step, warmup, rounds)

    # 3x3 convolution 16 -> 32 channels on [128, 16, 14, 14], padding 1 (bench/run.ts CONV)
    cx = torch.rand(128, 16, 14, 14, requires_grad=True)
    cw = torch.rand(32, 16, 3, 3, requires_grad=True)
    cdy = torch.rand(128, 32, 14, 14)

    def conv_train():
        cx.grad = None
        cw.grad = None
        torch.nn.functional.conv2d(cx, cw, padding=1).backward(cdy)
        return cx.grad.sum().item() + cw.grad.sum().item()

    with torch.no_grad():
        res['conv_fwd'] = median_ms(lambda: torch.nn.functional.conv2d(cx, cw, padding=1), warmup, rounds)
    res['conv_train'] = median_ms(conv_train, warmup, rounds)
    print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'results': res}))


if __name__ == '__main__':
    main()
