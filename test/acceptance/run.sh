#!/usr/bin/env bash
# User-project acceptance test (not run by mocha; takes a minute or two and needs the npm registry or a
# warm npm cache):
#
#   bash test/acceptance/run.sh     # KEEP=1 leaves the temp project for inspection; WITH_GL=1 also installs
#                                   # gpu.js's optional headless-gl (a native build: minutes)
#
# 1. builds tsnn (dist/src + transformer/dist) and packs it with `npm pack`, as it would be published;
# 2. creates a fresh project in a temp dir and `npm install`s the tarball (plus @types/node, as most
#    projects have) — `--prefer-offline`, so a warm cache is enough;
# 3. writes API.md's "Writing a model" example (MLP + Scale) and compiles it with `npx ttsc`;
# 4. runs it: output shapes, parameter/stateDict names, the static registration table, a training step;
# 5. compiles the same program with plain `npx tsc` (runtime decorator fallback) and checks the run prints
#    the same report;
# 6. checks `npx ttsc` rejects a Module field without @child, naming the class and the field.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tsnn-acceptance.XXXXXX")"
if [[ "${KEEP:-}" == 1 ]]; then echo "temp project kept in $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'ACCEPTANCE FAILED: %s\n' "$*" >&2; exit 1; }

step "build tsnn"
cd "$ROOT"
# tsc emits even where work in progress elsewhere has type errors; what matters is that the package builds
node node_modules/typescript/bin/tsc -p tsconfig.json >"$WORK/build.log" 2>&1 || echo "(tsc reported $(grep -c 'error TS' "$WORK/build.log") type error(s); JS emitted anyway)"
node node_modules/typescript/bin/tsc -p transformer/tsconfig.json
[[ -f dist/src/index.js && -f dist/src/index.d.ts && -f transformer/dist/index.js ]] || fail "build outputs missing"

step "npm pack"
TGZ="$(npm pack --silent --pack-destination "$WORK" 2>/dev/null | tail -n1)"
[[ -f "$WORK/$TGZ" ]] || fail "npm pack produced no tarball"
tar tzf "$WORK/$TGZ" >"$WORK/files.txt"
echo "$TGZ: $(wc -l <"$WORK/files.txt") files"
grep -qx 'package/bin/ttsc.js' "$WORK/files.txt" || fail "bin/ttsc.js not in the package"
for f in ttsc-cache.js ttsc-typescript.js; do grep -qx "package/bin/$f" "$WORK/files.txt" || fail "bin/$f (required by bin/ttsc.js) not in the package"; done
grep -qx 'package/transformer/dist/index.js' "$WORK/files.txt" || fail "the transformer is not in the package"
grep -qx 'package/dist/src/index.d.ts' "$WORK/files.txt" || fail "the typings are not in the package"

step "fresh project: npm install the tarball"
APP="$WORK/app"
mkdir -p "$APP/src"
cd "$APP"
cat >package.json <<'JSON'
{ "name": "tsnn-acceptance-app", "version": "1.0.0", "private": true }
JSON
# gpu.js's optional headless-gl (native build, minutes) is left out unless WITH_GL=1: cpu/webasm suffice here
OMIT=(--omit=optional)
[[ "${WITH_GL:-}" == 1 ]] && OMIT=()
npm install --prefer-offline --no-audit --no-fund --loglevel=error "${OMIT[@]}" "$WORK/$TGZ" @types/node@20 2>&1 | grep -v '^npm warn' || true
[[ -f node_modules/tsnn/package.json && -x node_modules/.bin/ttsc ]] || fail "npm install did not install tsnn and its ttsc bin"

cat >tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "commonjs",
    "moduleResolution": "node",
    "strict": true,
    "esModuleInterop": true,
    "skipLibCheck": true,
    "rootDir": "src",
    "outDir": "out"
  },
  "include": ["src"]
}
JSON
cat >tsconfig.tsc.json <<'JSON'
{ "extends": "./tsconfig.json", "compilerOptions": { "outDir": "out-tsc" } }
JSON

# API.md's example, verbatim, plus checks a user would write
cat >src/main.ts <<'TS'
import { nn, F, Tensor, child, param, buffer, tensor, rand, manualSeed, optim } from 'tsnn';

class MLP extends nn.Module {
  @child hidden = new nn.LazyLinear(256);   // sub-module: registered, moved, saved
  @child out = new nn.LazyLinear(10);
  forward(X: Tensor): Tensor { return this.out(F.relu(this.hidden(X))); }
}
class Scale extends nn.Module {
  @param gain = tensor([1.0]);             // trainable tensor (requiresGrad), in stateDict
  @buffer mask = rand([20, 20]);           // fixed tensor: no grad, moved by .to(), in stateDict
  forward(x: Tensor) { return x.mul(this.gain); }
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`check failed: ${what}`);
}

manualSeed(0);
const X = rand([2, 20]);
const net = new MLP();
const y = net(X);                          // modules are callable: runs hooks, then forward
check(JSON.stringify(y.shape) === '[2,10]', 'MLP output shape');
const names = net.namedParameters().map(([n]) => n);
check(names.join() === 'hidden.weight,hidden.bias,out.weight,out.bias', `MLP parameter names: ${names}`);

const scale = new Scale();
check(scale.gain.requiresGrad && !scale.mask.requiresGrad, 'Scale: gain trainable, mask fixed');
check(Object.keys(scale.stateDict()).join() === 'gain,mask', 'Scale stateDict keys');
const z = scale(y);
check(z.shape.join() === '2,10', 'Scale output shape');

// one training step changes the parameters
const opt = new optim.SGD(net.parameters(), { lr: 0.1 });
const before = net.hidden.weight.dataSync()[0];
net(X).sub(rand([2, 10])).pow(2).mean().backward();
opt.step();
check(net.hidden.weight.dataSync()[0] !== before, 'SGD step updated hidden.weight');

const fields = (cls: Function) => JSON.stringify((cls as any).__tsnnFields ?? null);
console.log(`registration: MLP ${fields(MLP)} Scale ${fields(Scale)}`);
console.log(`report: y=${y.shape} z=${z.shape} params=${names.join(',')} sd=${Object.keys(scale.stateDict()).join(',')} sum=${y.sum().item().toFixed(6)}`);
console.log(net.toString());
console.log('OK');
TS

step "npx ttsc"
npx ttsc -p . || fail "npx ttsc failed"
grep -q 'static __tsnnFields' out/main.js || fail "ttsc output has no __tsnnFields table"
if grep -q '__esDecorate\|__decorate(' out/main.js; then fail "ttsc output still applies decorators"; fi
node out/main.js | tee "$WORK/ttsc.txt"
grep -q '^OK$' "$WORK/ttsc.txt" || fail "the ttsc-compiled program did not finish"
grep -q 'registration: MLP \[{"name":"hidden","kind":"child"},{"name":"out","kind":"child"}\]' "$WORK/ttsc.txt" || fail "MLP's static table is not as expected"

step "plain npx tsc (runtime decorators) gives the same report"
npx tsc -p tsconfig.tsc.json || fail "plain tsc failed"
node out-tsc/main.js | tee "$WORK/tsc.txt"
grep -q '^OK$' "$WORK/tsc.txt" || fail "the tsc-compiled program did not finish"
diff <(grep -v '^registration' "$WORK/ttsc.txt") <(grep -v '^registration' "$WORK/tsc.txt") || fail "ttsc and tsc builds behave differently"
grep -q 'registration: MLP null Scale null' "$WORK/tsc.txt" || fail "plain tsc output should have no static table"

step "npx ttsc rejects an unregistered Module field"
mkdir -p bad
cat >bad/bad.ts <<'TS'
import { nn, Tensor } from 'tsnn';
export class Forgot extends nn.Module {
  layer = new nn.Linear(2, 2);
  forward(x: Tensor): Tensor { return this.layer(x); }
}
TS
set +e
npx ttsc --noEmit --strict --skipLibCheck --target ES2022 --module commonjs --moduleResolution node bad/bad.ts >"$WORK/bad.txt" 2>&1
status=$?
set -e
cat "$WORK/bad.txt"
[[ $status -ne 0 ]] || fail "ttsc accepted an unregistered Module field"
grep -q 'Forgot.layer holds a Module but is not registered' "$WORK/bad.txt" || fail "the diagnostic does not name Forgot.layer"

printf '\nACCEPTANCE PASSED\n'
