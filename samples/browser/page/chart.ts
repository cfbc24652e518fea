/** The live training chart: training loss per step (left axis) and test accuracy per epoch (right axis). */
import Chart from 'chart.js/auto';

export class LiveChart {
  private readonly chart: Chart<'line', { x: number; y: number }[]>;
  private pending = false;

  constructor(canvas: HTMLCanvasElement) {
    this.chart = new Chart(canvas, {
      type: 'line',
      data: {
        datasets: [
          { label: 'training loss (per batch)', data: [], yAxisID: 'loss', borderColor: '#c44', pointRadius: 0, borderWidth: 1.5 },
          { label: 'test accuracy (per epoch)', data: [], yAxisID: 'acc', borderColor: '#27a', pointRadius: 4, borderWidth: 2 },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        scales: {
          x: { type: 'linear', title: { display: true, text: 'epoch' } },
          loss: { type: 'linear', position: 'left', beginAtZero: true, title: { display: true, text: 'loss' } },
          acc: { type: 'linear', position: 'right', min: 0, max: 1, grid: { drawOnChartArea: false }, title: { display: true, text: 'accuracy' } },
        },
      },
    });
  }

  reset(): void {
    for (const d of this.chart.data.datasets) d.data = [];
    this.chart.update();
  }

  /** `x` in epochs (fractional within an epoch). */
  addLoss(x: number, loss: number): void {
    this.chart.data.datasets[0].data.push({ x, y: loss });
    this.redrawSoon();
  }

  addAccuracy(epoch: number, acc: number): void {
    this.chart.data.datasets[1].data.push({ x: epoch, y: acc });
    this.redrawSoon();
  }

  /** One redraw per animation frame however many points arrive. */
  private redrawSoon(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.chart.update();
    });
  }
}
