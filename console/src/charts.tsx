// uPlot charts: the step chart of an event's signal before it is sent, and
// the line chart of received telemetry. uPlot draws on a canvas; the data
// is also given as text (aria-label and a caption) for screen readers.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

interface Props {
  xs: number[];
  ys: number[];
  label: string;
  step?: boolean;
  height?: number;
}

export function Chart({ xs, ys, label, step, height = 220 }: Props) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el || !xs.length) return;
    const width = Math.max(320, Math.min(el.clientWidth || 800, 1100));
    const opts: uPlot.Options = {
      width,
      height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      series: [
        {},
        {
          label,
          stroke: '#1f5fbf',
          width: 2,
          fill: step ? 'rgba(31,95,191,0.12)' : undefined,
          paths: step ? uPlot.paths.stepped!({ align: 1 }) : undefined,
        },
      ],
      axes: [{ label: 'UTC' }, {}],
    };
    const plot = new uPlot(opts, [xs, ys], el);
    return () => plot.destroy();
  }, [xs, ys, label, step, height]);
  if (!xs.length) return <p class="muted">No data to draw.</p>;
  return (
    <figure class="chart">
      <div ref={box} role="img" aria-label={`${label}: ${ys.length} points, from ${Math.min(...ys)} to ${Math.max(...ys)}`} />
      <figcaption>
        {label}: {ys.length} points
      </figcaption>
    </figure>
  );
}
