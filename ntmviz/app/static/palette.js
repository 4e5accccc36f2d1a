// Palettes: what colour a value is painted. Pure functions and lookup tables, no DOM.
//
// Every heatmap colours through a 256-entry table of packed RGBA words (little-endian ABGR, as a
// Uint32Array view of ImageData reads them) indexed by the value's palette index:
//   signed values (memory, keys, adds)  index round(127 + 127 v / scale), clipped to 0 .. 254:
//                                        127 is exactly 0 (near white), 0 is -scale (blue),
//                                        254 is +scale (red)
//   unit values (weightings, bits)      index round(255 v / scale), clipped to 0 .. 255
// ntmviz/app/palette.py is the Python copy (palette_index there: payload.py sends large arrays as
// these very indices). Heads' colours come with the payload (palette.py's twelve), so the browser
// paints each head in the colour a figure gives it.

export const SIGNED_ZERO = 127;

export function hexRGB(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

export function pack(r, g, b) {
  return ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

export function unpack(word) {
  return [word & 255, (word >>> 8) & 255, (word >>> 16) & 255];
}

function mix(from, to, f) {
  return pack(Math.round(from[0] + (to[0] - from[0]) * f), Math.round(from[1] + (to[1] - from[1]) * f),
    Math.round(from[2] + (to[2] - from[2]) * f));
}

export function rampLUT(from, to) {
  const lut = new Uint32Array(256);
  for (let i = 0; i < 256; i++) lut[i] = mix(from, to, i / 255);
  return lut;
}

// The diverging palette's ends and middle: negative blue, zero near white, positive red.
export const NEGATIVE = [33, 102, 172];
export const MIDDLE = [247, 247, 247];
export const POSITIVE = [178, 24, 43];

export const DIVERGING = (() => {
  const lut = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    const f = Math.max(-1, Math.min(1, (i - SIGNED_ZERO) / SIGNED_ZERO));
    lut[i] = mix(MIDDLE, f < 0 ? NEGATIVE : POSITIVE, Math.abs(f));
  }
  return lut;
})();

export const GREYS = rampLUT([255, 255, 255], [34, 34, 34]);
// slot state and slot x slot matrices: white (low) to deep purple (high)
export const STATE = rampLUT([255, 255, 255], [63, 0, 125]);

// White (0) to a head's colour (1), for its weightings; one table per colour.
const headLUTs = new Map();
export function headLUT(colour) {
  if (!headLUTs.has(colour)) headLUTs.set(colour, rampLUT([255, 255, 255], hexRGB(colour)));
  return headLUTs.get(colour);
}

// NaN paints as zero, as payload.py encodes it.
export function lutIndexSigned(v, scale) {
  const i = Math.round(SIGNED_ZERO + (SIGNED_ZERO * v) / scale);
  return Number.isNaN(i) ? SIGNED_ZERO : i < 0 ? 0 : i > 2 * SIGNED_ZERO ? 2 * SIGNED_ZERO : i;
}
export function lutIndexUnit(v, scale) {
  const i = Math.round((255 * v) / scale);
  return Number.isNaN(i) ? 0 : i < 0 ? 0 : i > 255 ? 255 : i;
}

// The value a palette index stands for (how payload.py's uint8 arrays decode).
export function indexValue(i, scale, signed) {
  return signed ? ((i - SIGNED_ZERO) * scale) / SIGNED_ZERO : (i * scale) / 255;
}

// The packed colour of a signed value on a symmetric scale (the memory view's cells).
export function signedColour(v, scale) {
  return DIVERGING[lutIndexSigned(v, scale)];
}
