// Building DOM and SVG nodes without innerHTML (every text goes in as text, never as markup).

const SVG = 'http://www.w3.org/2000/svg';

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/**
 * `el('td', { class: 'num', text: '42', title: null }, ...children)`: attributes that are
 * null, undefined or false are left out; `class` and `text` set className and textContent.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  node.append(...children);
  return node;
}

/** An SVG element with these attributes and children. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  node.append(...children);
  return node;
}

/** A tooltip for an SVG shape. */
export const svgTitle = (text) => svg('title', {}, text);
