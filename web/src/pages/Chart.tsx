import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

// Chart is one uPlot time-series chart (loaded lazily with the metrics page,
// so the initial bundle stays small). uPlot draws on a canvas; labels and the
// legend are text.
export type Series = { label: string; values: number[]; color: string; format?: (v: number) => string };

export default function Chart({ title, times, series }: { title: string; times: number[]; series: Series[] }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = () => Math.max(280, el.clientWidth - 8);
    const plot = new uPlot(
      {
        width: width(),
        height: 200,
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            value: (_u: uPlot, v: number | null) => (v === null ? '—' : s.format ? s.format(v) : String(Math.round(v * 100) / 100)),
          })),
        ],
        axes: [{}, { values: (_u: uPlot, ticks: number[]) => ticks.map((v) => (series[0]?.format ? series[0].format(v) : String(v))) , size: 70 }],
        scales: { y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      },
      [times, ...series.map((s) => s.values)],
      el,
    );
    const ro = new ResizeObserver(() => plot.setSize({ width: width(), height: 200 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [times, series]);
  return (
    <figure className="card chart" aria-label={title} data-points={times.length}>
      <figcaption>
        <h3>{title}</h3>
      </figcaption>
      <div ref={box} />
    </figure>
  );
}
