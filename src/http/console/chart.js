// The per-tenant activity chart: queries/s over the last minutes, drawn as inline SVG.
import { el, formatRate, svg } from './dom.js';

/** How much history the chart keeps and shows, ms. */
const WINDOW_MS = 180_000;
const HEIGHT = 230;
const MARGIN = { left: 38, right: 12, top: 10, bottom: 22 };
/** Okabe–Ito colours: distinguishable with the common colour-vision deficiencies. */
const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#6a3d9a', '#4d4d4d'];
const ERROR_COLOR = '#c62828';
/** Lines drawn at most in the all-tenants view (the most active tenants). */
const MAX_SERIES = 6;

/** @typedef {{ t: number, rates: Map<string, { queries: number, errors: number }> }} Sample */
/** @typedef {{ label: string, color: string, dashed: boolean, values: { t: number, v: number }[] }} Series */

/** @param {number} value @returns {number} 1, 2 or 5 times a power of ten, at least `value` */
function niceCeil(value) {
  const power = 10 ** Math.floor(Math.log10(Math.max(value, 1e-9)));
  const step = [1, 2, 5, 10].find((s) => s * power >= value) ?? 10;
  return step * power;
}

/** A line chart of queries/s per tenant; one tenant alone also shows its errors/s. */
export class ActivityChart {
  /** @type {Sample[]} */
  #samples = [];
  /** @type {Map<string, string>} */
  #colors = new Map();

  /**
   * @param {HTMLElement} figure where the SVG goes
   * @param {HTMLUListElement} legend
   * @param {HTMLSelectElement} select the tenant shown ('' for all)
   */
  constructor(figure, legend, select) {
    this.figure = figure;
    this.legend = legend;
    this.select = select;
    select.addEventListener('change', () => this.render());
  }

  /** @param {Sample} sample */
  add(sample) {
    this.#samples.push(sample);
    while ((this.#samples[0]?.t ?? sample.t) < sample.t - WINDOW_MS) this.#samples.shift();
    this.render();
  }

  /** @param {string} name @returns {string} a stable colour per tenant */
  #color(name) {
    let color = this.#colors.get(name);
    if (!color) this.#colors.set(name, (color = PALETTE[this.#colors.size % PALETTE.length] ?? '#000'));
    return color;
  }

  /** @returns {Series[]} */
  #series() {
    const chosen = this.select.value;
    const values = (/** @type {'queries' | 'errors'} */ kind, /** @type {string} */ name) =>
      this.#samples.map((s) => ({ t: s.t, v: s.rates.get(name)?.[kind] ?? 0 }));
    if (chosen) {
      return [
        {
          label: `${chosen} queries`,
          color: this.#color(chosen),
          dashed: false,
          values: values('queries', chosen),
        },
        { label: `${chosen} errors`, color: ERROR_COLOR, dashed: true, values: values('errors', chosen) },
      ];
    }
    /** @type {Map<string, number>} */
    const totals = new Map();
    for (const s of this.#samples) {
      for (const [name, r] of s.rates) totals.set(name, (totals.get(name) ?? 0) + r.queries);
    }
    return [...totals]
      .filter(([, total]) => total > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, MAX_SERIES)
      .map(([name]) => ({
        label: name,
        color: this.#color(name),
        dashed: false,
        values: values('queries', name),
      }));
  }

  render() {
    const width = Math.max(300, Math.floor(this.figure.clientWidth || 480));
    const series = this.#series();
    const now = this.#samples.at(-1)?.t ?? 0;
    const peak = Math.max(0, ...series.flatMap((s) => s.values.map((p) => p.v)));
    const yMax = niceCeil(Math.max(peak, 1));
    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
    const x = (/** @type {number} */ t) => MARGIN.left + plotW * (1 - (now - t) / WINDOW_MS);
    const y = (/** @type {number} */ v) => MARGIN.top + plotH * (1 - v / yMax);
    const chart = svg('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, class: 'plot' });
    chart.setAttribute('role', 'img');
    chart.setAttribute('aria-label', this.#summary(series));
    for (let i = 0; i <= 4; i++) {
      const value = (yMax * i) / 4;
      chart.append(
        svg('line', {
          x1: MARGIN.left,
          x2: width - MARGIN.right,
          y1: y(value),
          y2: y(value),
          class: 'gridline',
        }),
      );
      const text = svg('text', { x: MARGIN.left - 6, y: y(value) + 4, 'text-anchor': 'end', class: 'tick' });
      text.textContent = String(Number(value.toFixed(2)));
      chart.append(text);
    }
    ['3 min ago', '2 min', '1 min', 'now'].forEach((label, i) => {
      const text = svg('text', { x: MARGIN.left + (plotW * i) / 3, y: HEIGHT - 6, class: 'tick' });
      text.setAttribute('text-anchor', i === 0 ? 'start' : i === 3 ? 'end' : 'middle');
      text.textContent = label;
      chart.append(text);
    });
    for (const s of series) {
      const points = s.values.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
      const line = svg('polyline', { points, fill: 'none', stroke: s.color, 'stroke-width': 2 });
      if (s.dashed) line.setAttribute('stroke-dasharray', '5 4');
      chart.append(line);
    }
    if (series.length === 0) {
      const text = svg('text', { x: MARGIN.left + plotW / 2, y: MARGIN.top + plotH / 2, class: 'empty' });
      text.setAttribute('text-anchor', 'middle');
      text.textContent = this.#samples.length < 2 ? 'Measuring…' : 'No queries in the last 3 minutes';
      chart.append(text);
    }
    this.figure.replaceChildren(chart);
    this.legend.replaceChildren(
      ...series.map((s) => {
        const swatch = el('span', { class: s.dashed ? 'swatch dashed' : 'swatch', 'aria-hidden': 'true' });
        swatch.style.setProperty('--swatch', s.color);
        return el('li', {}, swatch, `${s.label}: ${formatRate(s.values.at(-1)?.v ?? 0)}/s`);
      }),
    );
  }

  /** @param {Series[]} series @returns {string} the chart in words, for screen readers */
  #summary(series) {
    if (series.length === 0) return 'Activity chart: no queries in the last 3 minutes.';
    const parts = series.map((s) => {
      const peak = Math.max(...s.values.map((p) => p.v));
      return `${s.label} now ${formatRate(s.values.at(-1)?.v ?? 0)}/s, peak ${formatRate(peak)}/s`;
    });
    return `Queries per second over the last 3 minutes: ${parts.join('; ')}.`;
  }
}
