/** Writes the training curves as an SVG chart (vega-lite, rendered headless). */
import * as fs from 'fs';

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  testAccuracy: number;
}

// vega and vega-lite ship as ES modules; load them with a real dynamic import from this CommonJS build
const importEsm = new Function('m', 'return import(m)') as (m: string) => Promise<any>;

export async function writeCurves(path: string, history: EpochRecord[], title: string): Promise<void> {
  const [vega, vl] = await Promise.all([importEsm('vega'), importEsm('vega-lite')]);
  const values = history.flatMap((h) => [
    { epoch: h.epoch, metric: 'train loss', value: h.trainLoss },
    { epoch: h.epoch, metric: 'test accuracy', value: h.testAccuracy },
  ]);
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values },
    facet: { row: { field: 'metric', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 480,
      height: 180,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1 } },
        y: { field: 'value', type: 'quantitative', scale: { zero: false } },
        color: { field: 'metric', type: 'nominal', legend: null },
      },
    },
  };
  const view = new vega.View(vega.parse(vl.compile(spec as any).spec), { renderer: 'none' });
  fs.writeFileSync(path, await view.toSVG());
}
