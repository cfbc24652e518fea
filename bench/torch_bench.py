"""PyTorch CPU reference timings for `npm run bench` (bench/run.ts runs it as a subprocess, per case and thread count).

    python3 bench/torch_bench.py --threads N [--cases a,b] [--warmup W] [--rounds R] [--budget MS] [--probe]
                                 [--openblas-env user|inherit]

Prints one JSON object on stdout: {"info": {...}, "results": {case: {"ms": median, "min", "rounds"}}} or, when
PyTorch is not set up as its users have it, {"info": {...}, "error": "..."} with exit status 3.

PyTorch is timed as a user has it: Debian's build calls whatever `libblas.so.3` the dynamic linker gives it
(update-alternatives), so the script finds the library PyTorch's sgemm_ actually comes from and asks it what it
is (openblas_get_config / corename, ...); the reference (netlib) BLAS, 30x slower at a 512 matmul than OpenBLAS
and which no PyTorch user has, is refused, not timed. Before any timing the matmul layouts the cases use are
checked against float64 products computed without BLAS, so a BLAS kernel that is fast but wrong on this CPU
is refused too.

Threads: the thread count must be fixed before torch loads (OpenBLAS's pthread pool and OpenMP read their
variables when the libraries load), so this script sets OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS
and only then imports torch, then also calls torch.set_num_threads; a pool of another size is refused.
"""
import argparse
import ctypes
import json
import os
import sys
import time

CASES = ['matmul', 'mlp_fwd_b256', 'mlp_fwd_b1', 'mlp_train_b256', 'conv_fwd', 'conv_train', 'resnet18_eval', 'resnet18_eval_b16']
# substrings of mapped library file names that are BLAS implementations
BLAS_NAMES = ('libblas', 'libopenblas', 'libmkl', 'libblis', 'libcblas', 'libflexiblas', 'libatlas', 'libsatlas', 'libtatlas')
EXIT_REFUSED = 3


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--threads', type=int, required=True, help='intra-op threads (OpenBLAS, OpenMP, torch)')
    p.add_argument('--cases', default=','.join(CASES))
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--rounds', type=int, default=15)
    p.add_argument('--budget', type=float, default=3000.0, help='ms per case; slow cases run fewer rounds (at least 3)')
    p.add_argument('--probe', action='store_true', help='only report the BLAS, threads and the correctness check')
    p.add_argument('--openblas-env', choices=('user', 'inherit'), default='user',
                   help="'user' (default): drop OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, so OpenBLAS picks its kernel for "
                        "this CPU itself, as on a PyTorch user's machine; 'inherit': keep them as set in this environment")
    a = p.parse_args()
    unknown = [c for c in a.cases.split(',') if c not in CASES]
    if unknown:
        p.error(f'unknown case(s) {unknown}; known: {CASES}')
    if a.threads < 1:
        p.error('--threads must be >= 1')
    return a


def mapped_blas_libs():
    """Real paths of the BLAS libraries this process has mapped (a symlink chain such as Debian's
    /usr/lib/x86_64-linux-gnu/libblas.so.3 -> /etc/alternatives/... appears here resolved to its target)."""
    libs = []
    with open('/proc/self/maps') as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) < 6:
                continue
            p = parts[5].strip()
            if any(n in os.path.basename(p) for n in BLAS_NAMES) and p not in libs:
                libs.append(p)
    return libs


def _symbol(lib, name, restype):
    try:
        fn = getattr(lib, name)
    except AttributeError:
        return None
    fn.restype = restype
    return fn


def identify(path):
    """What a mapped BLAS library says it is (dlopen of a mapped library returns the same handle)."""
    try:
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    except OSError as e:
        return {'path': path, 'kind': 'unloadable', 'why': str(e)}
    cfg = _symbol(lib, 'openblas_get_config', ctypes.c_char_p)
    if cfg:
        core = _symbol(lib, 'openblas_get_corename', ctypes.c_char_p)
        nth = _symbol(lib, 'openblas_get_num_threads', ctypes.c_int)
        return {
            'path': path,
            'kind': 'openblas',
            'config': cfg().decode(),
            'corename': core().decode() if core else None,
            'threads': nth() if nth else None,
        }
    mkl = _symbol(lib, 'mkl_get_max_threads', ctypes.c_int)
    if mkl:
        return {'path': path, 'kind': 'mkl', 'threads': mkl()}
    blis = _symbol(lib, 'bli_info_get_version_str', ctypes.c_char_p)
    if blis:
        return {'path': path, 'kind': 'blis', 'config': blis().decode()}
    if _symbol(lib, 'flexiblas_current_backend', ctypes.c_int):
        return {'path': path, 'kind': 'flexiblas'}
    if _symbol(lib, 'sgemm_', ctypes.c_int):
        # a BLAS with none of the optimised libraries' entry points: Debian's libblas3 (netlib reference) or alike
        return {'path': path, 'kind': 'reference'}
    return {'path': path, 'kind': 'other'}


class _DlInfo(ctypes.Structure):
    _fields_ = [('dli_fname', ctypes.c_char_p), ('dli_fbase', ctypes.c_void_p), ('dli_sname', ctypes.c_char_p), ('dli_saddr', ctypes.c_void_p)]


def sgemm_provider():
    """The library whose sgemm_ PyTorch's CPU library calls: dlsym through libtorch_cpu's own handle searches it
    and its dependencies in load order, as the dynamic linker did when it bound torch's call (a process can map
    two BLAS at once, e.g. the reference libblas.so.3 plus OpenBLAS pulled in by liblapack.so.3)."""
    with open('/proc/self/maps') as f:
        torch_cpu = next((l.split(None, 5)[5].strip() for l in f if 'libtorch_cpu' in l and len(l.split(None, 5)) == 6), None)
    if not torch_cpu:
        return None
    try:
        addr = ctypes.cast(getattr(ctypes.CDLL(torch_cpu), 'sgemm_'), ctypes.c_void_p).value
    except (OSError, AttributeError):
        return None
    info = _DlInfo()
    if not ctypes.CDLL(None).dladdr(ctypes.c_void_p(addr), ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.path.realpath(info.dli_fname.decode())


def blas_report(torch):
    config = torch.__config__.show()
    built = next((kv.split('=', 1)[1] for kv in config.replace(',', ' ').split() if kv.startswith('BLAS_INFO=')), None)
    provider = sgemm_provider()
    report = {'torch_blas_info': built, 'mapped': mapped_blas_libs(), 'sgemm_from': identify(provider) if provider else None}
    try:  # threadpoolctl asks the same libraries; a second opinion where it is installed
        import threadpoolctl

        report['threadpoolctl'] = [
            {k: v for k, v in d.items() if k in ('internal_api', 'version', 'architecture', 'num_threads', 'filepath')}
            for d in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        report['threadpoolctl'] = None
    used = report['sgemm_from']
    if built == 'mkl':
        report['kind'], report['summary'] = 'mkl', 'MKL (linked into PyTorch)'
    elif used is None:
        report['kind'], report['summary'] = 'unknown', f"cannot tell which BLAS PyTorch calls (BLAS_INFO={built}, mapped {report['mapped']})"
    elif used['kind'] in ('openblas', 'mkl', 'blis', 'flexiblas'):
        report['kind'] = used['kind']
        report['summary'] = used.get('config') or f"{used['kind']} {used['path']}"
        if used.get('corename'):
            report['summary'] += f" (kernel {used['corename']}, {used['threads']} thread{'s' if used['threads'] != 1 else ''})"
    else:
        report['kind'], report['summary'] = 'reference', f"the reference BLAS {used['path']}"
    return report


def check_matmuls(torch):
    """float32 products in every layout the cases use, against float64 computed elementwise (no BLAS), within
    the rounding bound |fl(AB) - AB| <= K u |A||B| (u = 2^-24) that any correct summation order meets. Rows
    checked: the first, middle and last 8 (every column tile, and the row tiles at both edges and inside)."""
    g = torch.Generator().manual_seed(7)
    u = 2.0 ** -24

    def check(name, a, b, got):
        m = a.shape[0]
        rows = sorted(r for r in {*range(8), *range(m // 2 - 3, m // 2 + 5), *range(m - 8, m)} if 0 <= r < m)
        a64, b64 = a[rows].double(), b.double()
        ref = (a64[:, :, None] * b64[None]).sum(1)  # elementwise multiply + sum: no BLAS call
        mag = (a64.abs()[:, :, None] * b64.abs()[None]).sum(1)
        ratio = ((got[rows].double() - ref).abs() / (a.shape[1] * u * mag + 1e-30)).max().item()
        return {'case': name, 'mkn': [m, a.shape[1], b.shape[1]], 'worst_error_over_bound': ratio, 'ok': ratio <= 1.0}

    a = torch.rand(512, 512, generator=g) * 2 - 1
    b = torch.rand(512, 512, generator=g) * 2 - 1
    bt, at = b.t().contiguous(), a.t().contiguous()
    x = torch.rand(256, 784, generator=g) * 2 - 1
    w = torch.rand(256, 784, generator=g) * 2 - 1
    gy = torch.rand(256, 256, generator=g) * 2 - 1
    v = torch.rand(1, 784, generator=g) * 2 - 1
    return [
        check('NN 512', a, b, a @ b),
        check('NT 512', a, b, a @ bt.t()),
        check('TN 512', a, b, at.t() @ b),
        check('linear x W^T', x, w.t(), torch.nn.functional.linear(x, w)),
        check('weight grad x^T g', x.t(), gy, x.t() @ gy),
        check('matrix-vector', v, w.t(), torch.nn.functional.linear(v, w)),
    ]


def median_ms(fn, warmup, rounds, budget):
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1000.0
    for _ in range(warmup - 1):
        fn()
    n = max(3, min(rounds, int(budget / max(first, 1e-3))))
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000.0)
    ts.sort()
    return ts[len(ts) // 2], ts[0], n


def make_cases(torch, wanted):
    """case id -> (round function, grad enabled)"""
    torch.manual_seed(0)
    fns = {}
    if 'matmul' in wanted:
        a, b = torch.rand(512, 512), torch.rand(512, 512)
        fns['matmul'] = (lambda: a @ b, False)
    if {'mlp_fwd_b256', 'mlp_fwd_b1', 'mlp_train_b256'} & set(wanted):
        net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        x256, x1, y = torch.rand(256, 784), torch.rand(1, 784), torch.arange(256) % 10

        def step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x256), y)
            loss.backward()
            opt.step()
            return loss.item()

        fns['mlp_fwd_b256'] = (lambda: net(x256), False)
        fns['mlp_fwd_b1'] = (lambda: net(x1), False)
        fns['mlp_train_b256'] = (step, True)
    if 'conv_fwd' in wanted or 'conv_train' in wanted:
        # 3x3 convolution 16 -> 32 channels on [128, 16, 14, 14], padding 1 (bench/run.ts CONV)
        cx = torch.rand(128, 16, 14, 14, requires_grad=True)
        cw = torch.rand(32, 16, 3, 3, requires_grad=True)
        cdy = torch.rand(128, 32, 14, 14)

        def conv_train():
            cx.grad = None
            cw.grad = None
            torch.nn.functional.conv2d(cx, cw, padding=1).backward(cdy)
            return cx.grad.sum().item() + cw.grad.sum().item()

        fns['conv_fwd'] = (lambda: torch.nn.functional.conv2d(cx, cw, padding=1), False)
        fns['conv_train'] = (conv_train, True)
    if 'resnet18_eval' in wanted or 'resnet18_eval_b16' in wanted:
        import torchvision

        model = torchvision.models.resnet18().eval()
        rx = torch.rand(2, 3, 64, 64)
        rx16 = torch.rand(16, 3, 64, 64)
        fns['resnet18_eval'] = (lambda: model(rx), False)
        fns['resnet18_eval_b16'] = (lambda: model(rx16), False)
    return fns


def main():
    args = parse_args()
    n = str(args.threads)
    # a workplace may pin OpenBLAS to an older core type (some OpenBLAS builds misdetect newer CPUs); a user's
    # machine has no such pin. The kernel OpenBLAS then picks is checked for correct products below.
    removed = {}
    if args.openblas_env == 'user':
        removed = {k: os.environ.pop(k) for k in ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE') if k in os.environ}
    # before torch (and with it OpenBLAS / libgomp) loads: their pools read these once, at load
    for var in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[var] = n
    import torch

    torch.set_num_threads(args.threads)
    info = {
        'torch': torch.__version__,
        'python': sys.version.split()[0],
        'threads': torch.get_num_threads(),
        'interop_threads': torch.get_num_interop_threads(),
        'mkldnn': torch.backends.mkldnn.is_available(),
        'cpu_capability': next((l.split(':', 1)[1].strip() for l in torch.__config__.show().splitlines() if 'CPU capability' in l), None),
        'env': {k: os.environ.get(k) for k in ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE', 'OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS')},
        'openblas_env': args.openblas_env,
        'removed_env': removed,
    }
    info['blas'] = blas_report(torch)
    refused = None
    if info['blas']['kind'] in ('reference', 'unknown'):
        refused = (f"PyTorch is running on {info['blas']['summary']}, not an optimised BLAS; no PyTorch user has that "
                   "(install OpenBLAS: apt-get install libopenblas0-pthread). Refusing to time it.")
    else:
        info['matmul_check'] = check_matmuls(torch)
        bad = [c['case'] for c in info['matmul_check'] if not c['ok']]
        if bad:
            refused = f"PyTorch's BLAS ({info['blas']['summary']}) gives wrong float32 products ({', '.join(bad)}); refusing to time it"
    # the pool sizes after torch and the check have run (OpenBLAS reports what it will use)
    info['blas'] = blas_report(torch)
    pool = (info['blas']['sgemm_from'] or {}).get('threads')
    if not refused and (info['threads'] != args.threads or (pool is not None and pool != args.threads)):
        refused = f"asked for {args.threads} thread(s), PyTorch has {info['threads']} and its BLAS {pool}: not the same thread count as tsnn"
    if refused:
        print(json.dumps({'info': info, 'error': refused}))
        print(f'torch_bench.py: {refused}', file=sys.stderr)
        sys.exit(EXIT_REFUSED)
    if args.probe:
        print(json.dumps({'info': info}))
        return
    wanted = args.cases.split(',')
    fns = make_cases(torch, wanted)
    results = {}
    for c in wanted:
        fn, grad = fns[c]
        with torch.set_grad_enabled(grad):
            med, low, n = median_ms(fn, args.warmup, args.rounds, args.budget)
        results[c] = {'ms': med, 'min': low, 'rounds': n}
    print(json.dumps({'info': info, 'results': results}))


if __name__ == '__main__':
    main()
