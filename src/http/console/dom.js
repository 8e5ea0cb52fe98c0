// Small DOM helpers: no framework, no innerHTML (text always goes through textContent).
/* global document */

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * The element with this id, checked to be of `type`.
 * @template {Element} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} type
 * @returns {T}
 */
export function byId(id, type) {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`#${id} is missing or not a ${type.name}`);
  return node;
}

/**
 * Creates an HTML element with attributes (`class`, `text` or any attribute; false and
 * undefined are left out) and children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | number | boolean | undefined>} [attrs]
 * @param {...(Node | string)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (name === 'class') node.className = String(value);
    else if (name === 'text') node.textContent = String(value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children);
  return node;
}

/**
 * Creates an SVG element with attributes.
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @returns {SVGElement}
 */
export function svg(tag, attrs = {}) {
  const node = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

/**
 * Shows a message in a live region (screen readers announce it); `kind` error styles it.
 * @param {HTMLElement} region
 * @param {string} text
 * @param {'info' | 'ok' | 'error'} [kind]
 */
export function say(region, text, kind = 'info') {
  region.textContent = text;
  region.dataset.kind = kind;
}

/**
 * Replaces the options of a select when they changed, keeping the selected value when it is
 * still offered (so polling never disturbs a user who is choosing).
 * @param {HTMLSelectElement} select
 * @param {{ value: string, label: string }[]} options
 */
export function setOptions(select, options) {
  const key = JSON.stringify(options);
  if (select.dataset.options === key) return;
  const previous = select.value;
  select.replaceChildren(...options.map((o) => el('option', { value: o.value, text: o.label })));
  select.dataset.options = key;
  if (options.some((o) => o.value === previous)) select.value = previous;
}

/**
 * A rate for a table cell: one decimal below 10, whole numbers above; a dash when unknown.
 * @param {number | undefined} rate
 * @returns {string}
 */
export function formatRate(rate) {
  if (rate === undefined) return '–';
  return rate < 10 ? rate.toFixed(1) : String(Math.round(rate));
}
