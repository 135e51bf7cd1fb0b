// imgsearch console: lists the instances, searches by picture (SearchImageByPic) or by
// a stored picture (SearchImageByName) through the same API every client uses, and
// shows the results with their stored thumbnails. Plain JavaScript, no dependencies.
//
// On a server with access keys every data request is signed like the SDKs sign
// (RPC signature V1, HMAC-SHA1), with a key the operator types in (kept in this tab's
// sessionStorage only); see `signed()`.
//
// State for tests and tools: <main data-state> is loading | signin | ready | searching |
// done | error; #results carries data-count; each thumbnail <img> gets data-loaded="1" once it
// has decoded (naturalWidth > 0), "missing" when the server has none.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const app = $('app');

  /** Server settings and the instances, from /console/api/instances. */
  let server = { Instances: [], SignedRequests: false, ThumbnailSize: 0 };
  /** The last search, to run again with other options: {kind: 'pic', content, preview} or {kind: 'name', product, pic}. */
  let last = null;
  /** Object URLs to release when the query picture changes. */
  let queryUrls = [];
  /** Numbers each search so that a slow reply cannot overwrite a newer one. */
  let generation = 0;

  /** Creates an element; children are nodes or strings (always inserted as text). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name.startsWith('data-')) node.dataset[toCamel(name.slice(5))] = value;
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function toCamel(text) {
    return text.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  }

  function setState(state) {
    app.dataset.state = state;
  }

  // ---- errors ------------------------------------------------------------------------

  /** An error in the vendor's shape (Code, Message, RequestId). */
  function vendorError(code, message, requestId) {
    return { Code: code, Message: message, RequestId: requestId };
  }

  function showError(error) {
    const box = $('error');
    box.replaceChildren(
      el('span', { class: 'code' }, String(error.Code || 'Error')),
      ': ',
      el('span', { class: 'message' }, String(error.Message || 'something went wrong')),
      error.RequestId ? el('span', { class: 'request' }, 'RequestId ' + error.RequestId) : null,
    );
    box.dataset.code = String(error.Code || 'Error');
    box.hidden = false;
  }

  function clearError() {
    $('error').hidden = true;
    $('error').replaceChildren();
  }

  /** Reads a JSON reply; a vendor error body (or a non-JSON failure) is thrown. */
  async function readReply(response) {
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok || !body || (body.Success !== undefined && body.Success !== true)) {
      const code = body && body.Code ? body.Code : 'HTTP ' + response.status;
      const message = body && body.Message ? body.Message : response.statusText || 'the server gave no details';
      throw vendorError(code, message, body && body.RequestId);
    }
    return body;
  }


  // ---- signing (RPC signature V1) ----------------------------------------------------------
  //
  // Pure JavaScript on purpose: WebCrypto's `subtle` exists only in secure contexts, and a
  // console reached over plain http on a LAN address is not one.

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
  function credentials() {
    const id = sessionStorage.getItem('imgsearch.accessKeyId');
    const secret = sessionStorage.getItem('imgsearch.accessKeySecret');
    return id && secret ? { id, secret } : null;
  }

  /**
   * `params` (name -> value) plus the signature parameters, signed for `method` and
   * `path`, as URLSearchParams ready to send; unchanged on an open server.
   */
  function signed(method, path, params) {
    const out = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== '') out.append(name, value);
    }
    const key = credentials();
    if (!server.SignedRequests || !key) return out;
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
  function keyFromFragment() {
    if (!location.hash) return;
    const h = new URLSearchParams(location.hash.slice(1));
    if (h.get('access-key-id') && h.get('access-key-secret')) {
      sessionStorage.setItem('imgsearch.accessKeyId', h.get('access-key-id'));
      sessionStorage.setItem('imgsearch.accessKeySecret', h.get('access-key-secret'));
    }
    // The secret must not stay in the address bar or the history.
    history.replaceState(null, '', location.pathname + location.search);
  }

  /** Shows the sign-in form; a submitted key is kept in the tab and the page starts over. */
  function askForKey(reason) {
    const form = $('signin');
    form.hidden = false;
    $('signin-reason').textContent = reason;
    setState('signin');
    $('access-key-id').focus();
  }

  // ---- API calls -----------------------------------------------------------------------

  /** POSTs an Action with form parameters, like any client of the API. */
  async function callAction(action, params) {
    const form = signed('POST', '/', Object.assign({ Action: action }, params));
    let response;
    try {
      response = await fetch('/?Action=' + encodeURIComponent(action), { method: 'POST', body: form });
    } catch (e) {
      throw vendorError('NetworkError', 'the server could not be reached: ' + e.message);
    }
    return readReply(response);
  }

  async function loadInstances() {
    let response;
    try {
      const settings = await readReply(await fetch('/console/api/settings', { cache: 'no-store' }));
      server.SignedRequests = settings.SignedRequests;
      server.ThumbnailSize = settings.ThumbnailSize;
      if (server.SignedRequests && !credentials()) {
        throw vendorError('SignInRequired', 'this server requires signed requests: enter an access key');
      }
      const query = signed('GET', '/console/api/instances', {}).toString();
      response = await fetch('/console/api/instances' + (query ? '?' + query : ''), { cache: 'no-store' });
    } catch (e) {
      if (e && e.Code) throw e;
      throw vendorError('NetworkError', 'the server could not be reached: ' + e.message);
    }
    server = await readReply(response);
    renderInstances();
    renderMode();
  }

  /** A thumbnail's URL, signed when the server wants signatures (a fresh nonce each time). */
  function thumbnailUrl(instance, product, pic) {
    const q = signed('GET', '/console/thumbnail', { instance, product, pic });
    return '/console/thumbnail?' + q.toString();
  }

  // ---- instances -------------------------------------------------------------------------

  function renderInstances() {
    const select = $('instance');
    const chosen = select.value;
    const body = $('instances').tBodies[0];
    body.replaceChildren();
    select.replaceChildren();
    for (const inst of server.Instances) {
      const row = el('tr', { 'data-name': inst.Name, title: 'Search in ' + inst.Name },
        el('td', null, el('span', { class: 'name' }, inst.Name),
          el('small', null, inst.Extractor + ', ' + inst.Dimension + '-d')),
        el('td', null, inst.ServiceTypeName),
        el('td', { class: 'num' }, inst.TotalCount.toLocaleString()),
        el('td', { class: 'num' }, inst.Capacity.toLocaleString()),
        el('td', { class: 'num' }, inst.Qps));
      row.addEventListener('click', () => selectInstance(inst.Name));
      body.append(row);
      select.append(el('option', { value: inst.Name }, inst.Name));
    }
    if (chosen) select.value = chosen;
    markSelected();
  }

  function selectInstance(name) {
    $('instance').value = name;
    markSelected();
  }

  function markSelected() {
    const name = $('instance').value;
    for (const row of $('instances').tBodies[0].rows) {
      row.classList.toggle('selected', row.dataset.name === name);
    }
  }

  function renderMode() {
    const notice = $('notice');
    const lines = [];
    if (server.SignedRequests) {
      const key = credentials();
      $('mode').textContent = 'Signed API · requests signed with ' + (key ? key.id : 'no key');
      $('signout').hidden = !key;
    } else {
      $('mode').textContent = 'Open API on a loopback address · searches go to /?Action=…';
    }
    if (!server.ThumbnailSize) {
      lines.push('Thumbnails are off (--thumbnail-size 0): pictures added now get no preview.');
    }
    notice.replaceChildren(...lines.map((line) => el('p', null, line)));
    notice.hidden = lines.length === 0;
  }

  // ---- searching ---------------------------------------------------------------------------

  /** Parameters every search shares, from the form. */
  function searchOptions() {
    return {
      InstanceName: $('instance').value,
      Num: $('num').value,
      Filter: $('filter').value.trim(),
      DistinctProductId: $('distinct').checked ? 'true' : '',
    };
  }

  /** Reads a file as base64 (PicContent). */
  function readBase64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => {
        const text = String(reader.result);
        resolve(text.slice(text.indexOf(',') + 1));
      };
      reader.onerror = () => reject(vendorError('FileError', 'the file could not be read: ' + reader.error));
      reader.readAsDataURL(file);
    });
  }

  async function searchByFile(file) {
    if (!file) return;
    let content;
    try {
      content = await readBase64(file);
    } catch (e) {
      showError(e);
      setState('error');
      return;
    }
    releaseQueryUrls();
    const preview = URL.createObjectURL(file);
    queryUrls.push(preview);
    last = { kind: 'pic', content, preview, label: file.name };
    run();
  }

  function searchByName(product, pic) {
    last = { kind: 'name', product, pic };
    run();
  }

  /** Runs `last` with the form's current options. */
  async function run() {
    if (!last) {
      showError(vendorError('NoQuery', 'drop or choose a picture first, or click a result'));
      return;
    }
    const mine = ++generation;
    const options = searchOptions();
    const query = last;
    clearError();
    setState('searching');
    $('results-head').textContent = 'searching…';
    try {
      let reply;
      if (query.kind === 'pic') {
        reply = await callAction('SearchImageByPic', {
          ...options,
          PicContent: query.content,
          Crop: $('crop').checked ? 'true' : 'false',
        });
      } else {
        reply = await callAction('SearchImageByName', {
          ...options,
          ProductId: query.product,
          PicName: query.pic,
        });
      }
      if (mine !== generation) return;
      updateAddress(query, options);
      await renderQuery(query, reply, options.InstanceName);
      if (mine !== generation) return;
      renderResults(reply, options.InstanceName, query);
      setState('done');
    } catch (e) {
      if (mine !== generation) return;
      $('results-head').textContent = '';
      showError(e.Code ? e : vendorError('Error', String(e && e.message ? e.message : e)));
      setState('error');
    }
  }

  /** Puts a by-name search in the address bar (a shareable link); a picture cannot go there. */
  function updateAddress(query, options) {
    const q = new URLSearchParams();
    q.set('instance', options.InstanceName);
    if (query.kind === 'name') {
      q.set('product', query.product);
      q.set('pic', query.pic);
    }
    if (options.Num !== '10') q.set('num', options.Num);
    if (options.Filter) q.set('filter', options.Filter);
    if (options.DistinctProductId) q.set('distinct', 'true');
    history.replaceState(null, '', '/console?' + q.toString());
  }

  // ---- the query picture -------------------------------------------------------------------

  function releaseQueryUrls() {
    for (const url of queryUrls) URL.revokeObjectURL(url);
    queryUrls = [];
  }

  /** `x1,x2,y1,y2` → numbers, or null. */
  function parseRegion(text) {
    const parts = String(text || '').split(',').map(Number);
    if (parts.length !== 4 || parts.some((n) => !Number.isFinite(n))) return null;
    const [x1, x2, y1, y2] = parts;
    return x2 > x1 && y2 > y1 ? { x1, x2, y1, y2 } : null;
  }

  /** Draws regions (source pixels) over a frame showing a `width`x`height` source. */
  function drawRegions(frame, width, height, main, others) {
    const boxes = [[main, 'region main']].concat(others.map((r) => [r, 'region other']));
    for (const [text, cls] of boxes) {
      const r = parseRegion(text);
      if (!r || !width || !height) continue;
      const box = el('div', { class: cls, 'data-region': text, title: 'Region ' + text });
      box.style.left = (100 * r.x1 / width) + '%';
      box.style.top = (100 * r.y1 / height) + '%';
      box.style.width = (100 * (r.x2 - r.x1) / width) + '%';
      box.style.height = (100 * (r.y2 - r.y1) / height) + '%';
      frame.append(box);
    }
  }

  /** Resolves when an image has loaded (true) or failed (false). */
  function loaded(img) {
    if (img.complete && img.naturalWidth > 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      img.addEventListener('load', () => resolve(img.naturalWidth > 0), { once: true });
      img.addEventListener('error', () => resolve(false), { once: true });
    });
  }

  /** Shows the query picture with its subject region, and what the reply says about it. */
  async function renderQuery(query, reply, instance) {
    const info = reply.PicInfo || {};
    const figure = $('query-figure');
    figure.replaceChildren();
    const others = (info.MultiRegion || [])
      .map((m) => m.Region)
      .filter((r) => r && r !== info.Region);
    let source = null; // {url, width, height, thumbnail}
    if (query.kind === 'pic') {
      source = { url: query.preview, thumbnail: false };
    } else {
      try {
        const response = await fetch(thumbnailUrl(instance, query.product, query.pic));
        if (response.ok) {
          const size = (response.headers.get('x-imgsearch-source-size') || '').split('x').map(Number);
          const url = URL.createObjectURL(await response.blob());
          releaseQueryUrls();
          queryUrls.push(url);
          source = { url, width: size[0], height: size[1], thumbnail: true };
        }
      } catch (_) {
        source = null;
      }
    }
    let shown = false;
    if (source) {
      const img = el('img', { alt: 'Query picture', class: 'query-img' });
      const frame = el('div', { class: 'frame' }, img);
      img.src = source.url;
      figure.append(frame);
      if (await loaded(img)) {
        shown = true;
        img.dataset.loaded = '1';
        // Fit a 360x320 box; small thumbnails are enlarged so that the box stays visible.
        const scale = Math.min(360 / img.naturalWidth, 320 / img.naturalHeight, source.thumbnail ? 2 : 1);
        img.style.width = Math.round(img.naturalWidth * scale) + 'px';
        const width = source.width || img.naturalWidth;
        const height = source.height || img.naturalHeight;
        drawRegions(frame, width, height, info.Region, others);
      } else {
        frame.remove();
      }
    }
    if (!shown) {
      figure.append(el('div', { class: 'placeholder frame' },
        query.kind === 'pic'
          ? 'This browser cannot show this format; the server read it.'
          : 'No thumbnail stored for this picture.'));
    }
    figure.append(el('figcaption', null,
      query.kind === 'pic' ? query.label : query.product + ' / ' + query.pic,
      el('br'), 'Subject region (x1,x2,y1,y2): ' + (info.Region || 'none')));

    const categories = new Map((info.AllCategories || []).map((c) => [c.Id, c.Name]));
    const head = reply.Head || {};
    const rows = [
      ['Category', info.CategoryId === undefined ? '—'
        : (categories.get(info.CategoryId) || '') + ' (' + info.CategoryId + ')'],
      ['Region', info.Region || '—'],
      ['Other regions', others.length ? others.join('  ') : '—'],
      ['Found', head.DocsFound],
      ['Returned', head.DocsReturn],
      ['Search time', head.SearchTime + ' ms'],
      ['RequestId', reply.RequestId],
    ];
    const dl = $('query-info');
    dl.replaceChildren();
    for (const [name, value] of rows) dl.append(el('dt', null, name), el('dd', null, value));
    if (query.kind === 'name') {
      const link = el('a', { href: location.pathname + location.search, id: 'share-link' }, 'link to this search');
      dl.append(el('dt', null, 'Share'), el('dd', null, link));
    }
    $('query-kind').textContent = query.kind === 'pic' ? 'SearchImageByPic' : 'SearchImageByName';
    $('query-panel').hidden = false;
  }

  // ---- results ---------------------------------------------------------------------------

  const ATTRIBUTES = ['IntAttr', 'IntAttr2', 'IntAttr3', 'IntAttr4',
    'StrAttr', 'StrAttr2', 'StrAttr3', 'StrAttr4', 'CustomContent'];

  function renderResults(reply, instance, query) {
    const grid = $('results');
    const auctions = reply.Auctions || [];
    const categories = new Map(((reply.PicInfo || {}).AllCategories || []).map((c) => [c.Id, c.Name]));
    grid.replaceChildren();
    grid.dataset.count = String(auctions.length);
    const head = reply.Head || {};
    $('results-head').textContent = auctions.length + ' of ' + (head.DocsFound ?? auctions.length) + ' found';
    if (!auctions.length) {
      grid.append(el('p', { class: 'empty' }, 'No picture matches.'));
      return;
    }
    auctions.forEach((a, i) => grid.append(resultCard(a, i, instance, query, categories)));
  }

  function resultCard(a, index, instance, query, categories) {
    const img = el('img', { class: 'thumb', alt: a.ProductId + ' / ' + a.PicName, decoding: 'async' });
    const box = el('div', { class: 'thumb-box' }, img, el('span', { class: 'rank' }, '#' + (index + 1)));
    img.addEventListener('load', () => {
      img.dataset.loaded = img.naturalWidth > 0 ? '1' : 'empty';
    });
    img.addEventListener('error', () => {
      img.dataset.loaded = 'missing';
      img.hidden = true;
      box.append(el('span', { class: 'placeholder' }, 'no thumbnail'));
    });
    img.src = thumbnailUrl(instance, a.ProductId, a.PicName);

    const score = Number(a.Score);
    const bar = el('span');
    bar.style.width = Math.max(0, Math.min(1, score)) * 100 + '%';
    const attrs = el('dl', { class: 'attrs' });
    if (a.CategoryId !== undefined) {
      attrs.append(el('dt', null, 'Category'),
        el('dd', null, (categories.get(a.CategoryId) || a.CategoryId) + ''));
    }
    for (const name of ATTRIBUTES) {
      if (a[name] !== undefined && a[name] !== null) {
        attrs.append(el('dt', null, name), el('dd', { 'data-attr': name }, a[name]));
      }
    }
    const isQuery = query.kind === 'name' && query.product === a.ProductId && query.pic === a.PicName;
    const card = el('article', {
      class: 'result' + (isQuery ? ' is-query' : ''),
      tabindex: 0,
      title: 'Search with this picture',
      'data-product': a.ProductId,
      'data-pic': a.PicName,
      'data-score': String(a.Score),
    },
    box,
    el('div', { class: 'meta' },
      el('div', { class: 'score' }, Number.isFinite(score) ? score.toFixed(4) : String(a.Score),
        el('span', { class: 'bar' }, bar)),
      el('div', { class: 'product' }, a.ProductId),
      el('div', { class: 'pic' }, a.PicName),
      attrs));
    const open = () => {
      window.scrollTo({ top: 0, behavior: 'smooth' });
      searchByName(a.ProductId, a.PicName);
    };
    card.addEventListener('click', open);
    card.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        open();
      }
    });
    return card;
  }

  // ---- wiring ------------------------------------------------------------------------------

  function wire() {
    const drop = $('drop');
    const file = $('file');
    drop.addEventListener('click', () => file.click());
    drop.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        file.click();
      }
    });
    file.addEventListener('change', () => {
      searchByFile(file.files[0]);
      file.value = '';
    });
    for (const name of ['dragenter', 'dragover']) {
      drop.addEventListener(name, (e) => {
        e.preventDefault();
        drop.classList.add('over');
      });
    }
    for (const name of ['dragleave', 'drop']) {
      drop.addEventListener(name, () => drop.classList.remove('over'));
    }
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      searchByFile(e.dataTransfer.files[0]);
    });
    // A picture dropped anywhere else searches too, instead of the browser opening it.
    document.addEventListener('dragover', (e) => e.preventDefault());
    document.addEventListener('drop', (e) => {
      if (e.defaultPrevented) return;
      e.preventDefault();
      searchByFile(e.dataTransfer.files[0]);
    });
    document.addEventListener('paste', (e) => {
      const item = [...(e.clipboardData ? e.clipboardData.items : [])].find((i) => i.kind === 'file');
      if (item) searchByFile(item.getAsFile());
    });
    $('instance').addEventListener('change', markSelected);
    $('search-form').addEventListener('submit', (e) => {
      e.preventDefault();
      run();
    });
  }

  /** Errors that mean "sign in (again)". */
  const AUTH_CODES = new Set(['SignInRequired', 'InvalidAccessKeyId.NotFound', 'SignatureDoesNotMatch',
    'MissingParameter']);

  /** Keeps a typed key in the tab (not in the page's URL) and starts over with it. */
  function wireSignIn() {
    $('signin').addEventListener('submit', (e) => {
      e.preventDefault();
      sessionStorage.setItem('imgsearch.accessKeyId', $('access-key-id').value.trim());
      sessionStorage.setItem('imgsearch.accessKeySecret', $('access-key-secret').value);
      location.reload();
    });
    $('signout').addEventListener('click', () => {
      sessionStorage.removeItem('imgsearch.accessKeyId');
      sessionStorage.removeItem('imgsearch.accessKeySecret');
      location.reload();
    });
  }

  /** Applies `?instance=&product=&pic=&num=&filter=&distinct=` and runs that search. */
  async function start() {
    keyFromFragment();
    wire();
    wireSignIn();
    const q = new URLSearchParams(location.search);
    if (q.get('filter')) $('filter').value = q.get('filter');
    if (q.get('num')) {
      const num = $('num');
      if (![...num.options].some((o) => o.value === q.get('num'))) num.append(el('option', null, q.get('num')));
      num.value = q.get('num');
    }
    $('distinct').checked = q.get('distinct') === 'true';
    if (q.get('crop') === 'false') $('crop').checked = false;
    try {
      await loadInstances();
    } catch (e) {
      if (AUTH_CODES.has(e.Code)) {
        $('mode').textContent = 'Signed API · not signed in';
        if (e.Code !== 'SignInRequired') showError(e);
        askForKey(e.Code === 'SignInRequired'
          ? 'This server requires signed requests (access keys are configured).'
          : 'The server refused this key.');
        return;
      }
      $('mode').textContent = 'Not connected';
      showError(e);
      setState('error');
      return;
    }
    const wanted = q.get('instance');
    if (wanted && !server.Instances.some((i) => i.Name === wanted)) {
      showError(vendorError('InvalidInstance', 'there is no instance named "' + wanted + '"'));
      setState('error');
      return;
    }
    selectInstance(wanted || (server.Instances[0] && server.Instances[0].Name) || '');
    setState('ready');
    if (q.get('product') && q.get('pic')) searchByName(q.get('product'), q.get('pic'));
  }

  start();
})();
