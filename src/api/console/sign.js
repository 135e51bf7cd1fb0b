// imgsearch console, signing: RPC signature V1 (HMAC-SHA1) as the SDKs sign, for servers
// with access keys. The key is typed in by the operator and kept in this tab's
// sessionStorage only; the secret itself is never sent.
//
// Pure JavaScript on purpose: WebCrypto's `subtle` exists only in secure contexts, and a
// console reached over plain http on a LAN address is not one.

/** Whether the server wants signed requests (set from /console/api/settings). */
export const signing = { enabled: false };

/** Stores a key for this tab (`null` removes it). */
export function setCredentials(key) {
  if (key) {
    sessionStorage.setItem('imgsearch.accessKeyId', key.id);
    sessionStorage.setItem('imgsearch.accessKeySecret', key.secret);
  } else {
    sessionStorage.removeItem('imgsearch.accessKeyId');
    sessionStorage.removeItem('imgsearch.accessKeySecret');
  }
}

/** SHA-1 of bytes (Uint8Array), as 20 bytes. */
function sha1(bytes) {
  const length = bytes.length;
  const words = new Uint32Array((((length + 8) >> 6) + 1) * 16);
  for (let i = 0; i < length; i++) words[i >> 2] |= bytes[i] << (24 - (i % 4) * 8);
  words[length >> 2] |= 0x80 << (24 - (length % 4) * 8);
  words[words.length - 1] = length * 8;
  let [a0, b0, c0, d0, e0] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
  const w = new Uint32Array(80);
  const rotl = (x, n) => (x << n) | (x >>> (32 - n));
  for (let block = 0; block < words.length; block += 16) {
    for (let t = 0; t < 80; t++) {
      w[t] = t < 16 ? words[block + t] : rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    }
    let [a, b, c, d, e] = [a0, b0, c0, d0, e0];
    for (let t = 0; t < 80; t++) {
      let f;
      let k;
      if (t < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
      else if (t < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
      else if (t < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
      else { f = b ^ c ^ d; k = 0xca62c1d6; }
      const temp = (rotl(a, 5) + f + e + k + w[t]) >>> 0;
      e = d; d = c; c = rotl(b, 30) >>> 0; b = a; a = temp;
    }
    a0 = (a0 + a) >>> 0; b0 = (b0 + b) >>> 0; c0 = (c0 + c) >>> 0;
    d0 = (d0 + d) >>> 0; e0 = (e0 + e) >>> 0;
  }
  const out = new Uint8Array(20);
  [a0, b0, c0, d0, e0].forEach((h, i) => {
    for (let j = 0; j < 4; j++) out[i * 4 + j] = (h >>> (24 - j * 8)) & 0xff;
  });
  return out;
}

/** HMAC-SHA1 (RFC 2104) of two strings, as base64. */
function hmacSha1Base64(key, message) {
  const encoder = new TextEncoder();
  let k = encoder.encode(key);
  if (k.length > 64) k = sha1(k);
  const pad = (byte) => {
    const out = new Uint8Array(64);
    for (let i = 0; i < 64; i++) out[i] = (k[i] || 0) ^ byte;
    return out;
  };
  const concat = (x, y) => {
    const out = new Uint8Array(x.length + y.length);
    out.set(x);
    out.set(y, x.length);
    return out;
  };
  const inner = sha1(concat(pad(0x36), encoder.encode(message)));
  const mac = sha1(concat(pad(0x5c), inner));
  return btoa(String.fromCharCode(...mac));
}

/** RFC 3986 percent-encoding, as the vendor's signature wants it. */
function popEncode(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** The key typed in by the operator, or null. */
export function credentials() {
  const id = sessionStorage.getItem('imgsearch.accessKeyId');
  const secret = sessionStorage.getItem('imgsearch.accessKeySecret');
  return id && secret ? { id, secret } : null;
}

/**
 * `params` (name -> value) plus the signature parameters, signed for `method` and
 * `path`, as URLSearchParams ready to send; unchanged on an open server.
 */
export function signed(method, path, params) {
  const out = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') out.append(name, value);
  }
  const key = credentials();
  if (!signing.enabled || !key) return out;
  const nonce = new Uint8Array(16);
  crypto.getRandomValues(nonce);
  out.append('AccessKeyId', key.id);
  out.append('Format', 'JSON');
  out.append('SignatureMethod', 'HMAC-SHA1');
  out.append('SignatureVersion', '1.0');
  out.append('SignatureNonce', [...nonce].map((b) => b.toString(16).padStart(2, '0')).join(''));
  out.append('Timestamp', new Date().toISOString().replace(/\.\d+Z$/, 'Z'));
  // Sorted by name in byte order (code units compare the same for these ASCII names).
  const canonical = [...out.entries()]
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => popEncode(name) + '=' + popEncode(value))
    .join('&');
  const toSign = method + '&' + popEncode(path) + '&' + popEncode(canonical);
  out.append('Signature', hmacSha1Base64(key.secret + '&', toSign));
  return out;
}

/** Takes a key from `#access-key-id=..&access-key-secret=..` (scripted use) into the tab. */
export function keyFromFragment() {
  if (!location.hash) return;
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get('access-key-id') && h.get('access-key-secret')) {
    setCredentials({ id: h.get('access-key-id'), secret: h.get('access-key-secret') });
  }
  // The secret must not stay in the address bar or the history.
  history.replaceState(null, '', location.pathname + location.search);
}
